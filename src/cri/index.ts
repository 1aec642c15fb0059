/**
 * cri/: the CRI v1 endpoint (kubelet, crictl, critest): RuntimeService and ImageService over a
 * unix socket, and the streaming server for exec, attach and port-forward. A translation layer
 * over the Runtime API: nothing below pod/ imports it.
 */
export { startCriServer, DEFAULT_SOCKET } from './server.js';
export type { CriServer, CriServerOptions } from './server.js';
export { loadCri, PROTO_PATH, LOADER_OPTIONS } from './proto.js';
export { networkCondition, podIps } from './network.js';
export { pullImage } from './image-service.js';
export { GRPC_CODES } from './status.js';
