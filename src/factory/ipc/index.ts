export * from './protocol.js';
export {
  startIpcServer,
  type IpcServer,
  type IpcServerOptions,
  type IpcLogger,
} from './ipc-server.js';
export { IpcClient, FactoryNotRunningError, type IpcClientOptions } from './ipc-client.js';
