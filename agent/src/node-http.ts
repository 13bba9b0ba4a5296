/**
 * `node:http` for the agent's modules, taken from Node's builtin registry rather than
 * with an ESM `import`. An ESM import builds the module's namespace by reading every
 * export, and `http.WebSocket`, `http.CloseEvent` and `http.MessageEvent` are lazy
 * getters that load Node's bundled undici: about 13 MB of resident memory in a process
 * that never uses them (https://github.com/nodejs/node/issues/59686). The CommonJS
 * object returned here leaves those getters untouched.
 */
export const http = process.getBuiltinModule('node:http');
