export * from './protocol.js';
export {
  startIpcServer,
  type IpcServer,
  type IpcServerOptions,
  type IpcLogger,
} from './ipc-server.js';
export { IpcClient, FactoryNotRunningError, type IpcClientOptions } from './ipc-client.js';
export { RunInbox, INBOX_MAX_MESSAGES, INBOX_MAX_MESSAGE_BYTES, messagesPrompt } from './inbox.js';
