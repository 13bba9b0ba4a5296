export * from './limits.ts';
export * from './errors.ts';
export * from './status.ts';
export * from './messages.ts';
export * from './codec.ts';
export * from './packages.ts';
export * from './install-policy.ts';
export * from './install-statement.ts';
