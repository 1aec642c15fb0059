/**
 * Probes, lifecycle hooks and container restart policies in nspod's model (Kubernetes meaning).
 * A *handler* is one way to check or poke a container: run a command in it (exec), an HTTP GET,
 * a TCP connect or a gRPC health check against the pod's network namespace, or (hooks only) sleep.
 */

export interface HttpHeader {
  name: string;
  value: string;
}

export interface ExecHandler {
  kind: 'exec';
  command: string[];
}

export interface HttpGetHandler {
  kind: 'httpGet';
  path: string;
  /** a number, or the name of one of the container's ports */
  port: number | string;
  /** default: the pod (127.0.0.1 inside its network namespace) */
  host?: string;
  scheme: 'HTTP' | 'HTTPS';
  headers: HttpHeader[];
}

export interface TcpSocketHandler {
  kind: 'tcpSocket';
  port: number | string;
  host?: string;
}

export interface GrpcHandler {
  kind: 'grpc';
  port: number;
  /** the service name sent in grpc.health.v1.HealthCheckRequest (default: "") */
  service?: string;
}

export interface SleepHandler {
  kind: 'sleep';
  seconds: number;
}

export type ProbeHandler = ExecHandler | HttpGetHandler | TcpSocketHandler | GrpcHandler;
export type HookHandler = ExecHandler | HttpGetHandler | SleepHandler | TcpSocketHandler;

export interface Probe {
  handler: ProbeHandler;
  initialDelaySeconds: number;
  periodSeconds: number;
  timeoutSeconds: number;
  successThreshold: number;
  failureThreshold: number;
}

export interface Lifecycle {
  postStart?: HookHandler;
  preStop?: HookHandler;
}
