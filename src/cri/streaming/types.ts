/** What the CRI Exec / Attach / PortForward calls hand to the streaming server. */
export interface ExecSession {
  kind: 'exec';
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface AttachSession {
  kind: 'attach';
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface PortForwardSession {
  kind: 'portforward';
  podId: string;
  ports: number[];
}

export type StreamSession = ExecSession | AttachSession | PortForwardSession;

export interface StreamingServer {
  /** e.g. http://127.0.0.1:40123 */
  readonly baseUrl: string;
  /** Registers a one-use session and returns its URL (valid for a minute). */
  urlFor(session: StreamSession): string;
  close(): Promise<void>;
}
