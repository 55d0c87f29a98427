export * from './core/index.js';
export * from './store/index.js';
export { buildServer, EventHub, type ServerOptions } from './server/index.js';
export * from './client/index.js';
