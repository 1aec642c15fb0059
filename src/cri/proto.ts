/**
 * The CRI v1 wire definition: proto/cri/api.proto loaded at run time with @grpc/proto-loader.
 * Messages are plain objects with the proto's snake_case field names, enums as their names,
 * int64 as decimal strings (exact for nanosecond timestamps), absent fields defaulted.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { projectDir } from '../config/index.js';

export const PROTO_PATH = path.join(projectDir, 'proto', 'cri', 'api.proto');

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface CriServices {
  RuntimeService: grpc.ServiceClientConstructor;
  ImageService: grpc.ServiceClientConstructor;
}

let cached: CriServices | undefined;

export function loadCri(): CriServices {
  if (cached) return cached;
  const def = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor } };
  };
  cached = { RuntimeService: pkg.runtime.v1.RuntimeService, ImageService: pkg.runtime.v1.ImageService };
  return cached;
}
