export * from './app-error.ts';
export * from './backoff.ts';
export * from './versions.ts';
export * from './logger.ts';
export * from './ca-hash.ts';
export * from './config-layers.ts';
export * from './durable-file.ts';
export * from './machine-key.ts';
