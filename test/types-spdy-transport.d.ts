declare module 'spdy-transport' {
  import type { Duplex } from 'node:stream';
  interface SpdyStream extends Duplex {
    on(event: 'response', fn: (status: number, headers: Record<string, string>) => void): this;
    on(event: string, fn: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  }
  interface SpdyConnection {
    start(version: number): void;
    request(
      uri: { method: string; path: string; host?: string; headers: Record<string, string> },
      cb: (err: Error | null, stream: SpdyStream) => void,
    ): SpdyStream;
    end(cb?: () => void): void;
    on(event: string, fn: (...args: any[]) => void): this; // eslint-disable-line @typescript-eslint/no-explicit-any
  }
  const transport: {
    connection: { create(socket: Duplex, opts: { protocol: 'spdy' | 'http2'; isServer: boolean }): SpdyConnection };
  };
  export default transport;
  export type { SpdyConnection, SpdyStream };
}
