/**
 * CNI wire types (CNI spec 1.0.0, and what 0.4.0 plugins print), validated with zod where nspod
 * reads them: network configuration lists from disk, and plugin results and errors from stdout.
 */
import { z } from 'zod/v3';

/** A plugin entry of a conflist: `type` plus whatever the plugin reads. */
export const pluginConfSchema = z
  .object({
    type: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a plugin binary name (no path)'),
    capabilities: z.record(z.string(), z.boolean()).optional(),
  })
  .passthrough();
export type PluginConf = z.infer<typeof pluginConfSchema>;

export const NETWORK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export const confListSchema = z
  .object({
    cniVersion: z.string().regex(/^\d+\.\d+\.\d+$/, 'a version like "1.0.0"'),
    name: z.string().regex(NETWORK_NAME_RE, 'letters, digits, "_", "." and "-"'),
    disableCheck: z.boolean().optional(),
    plugins: z.array(pluginConfSchema).min(1, 'at least one plugin'),
  })
  .passthrough();
export type ConfList = z.infer<typeof confListSchema>;

/** A single-plugin `.conf` file: the plugin's fields at the top level. */
export const singleConfSchema = pluginConfSchema.extend({
  cniVersion: z.string().regex(/^\d+\.\d+\.\d+$/),
  name: z.string().regex(NETWORK_NAME_RE),
});

export const resultSchema = z
  .object({
    cniVersion: z.string().optional(),
    interfaces: z
      .array(z.object({ name: z.string(), mac: z.string().optional(), sandbox: z.string().optional() }).passthrough())
      .optional(),
    ips: z
      .array(
        z
          .object({ address: z.string(), gateway: z.string().optional(), interface: z.number().optional() })
          .passthrough(),
      )
      .optional(),
    routes: z.array(z.object({ dst: z.string(), gw: z.string().optional() }).passthrough()).optional(),
    dns: z
      .object({
        nameservers: z.array(z.string()).optional(),
        domain: z.string().optional(),
        search: z.array(z.string()).optional(),
        options: z.array(z.string()).optional(),
      })
      .passthrough()
      .optional(),
  })
  .passthrough();
export type CniResult = z.infer<typeof resultSchema>;

export const errorSchema = z
  .object({ cniVersion: z.string().optional(), code: z.number(), msg: z.string(), details: z.string().optional() })
  .passthrough();

export const versionSchema = z.object({
  cniVersion: z.string(),
  supportedVersions: z.array(z.string()),
});

/** One entry of the `portMappings` capability (CNI conventions). */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp' | 'sctp';
  hostIP?: string;
}

/** The `bandwidth` capability, in bits per second and bits. */
export interface Bandwidth {
  ingressRate?: number;
  ingressBurst?: number;
  egressRate?: number;
  egressBurst?: number;
}

export interface CapabilityArgs {
  portMappings?: PortMapping[];
  bandwidth?: Bandwidth;
  [k: string]: unknown;
}

/** What a runtime passes a plugin besides the network config (CNI_* variables and runtimeConfig). */
export interface Attachment {
  containerId: string;
  /** path of the network namespace, '' when it is already gone (DEL only) */
  netns: string;
  ifName: string;
  args: Array<[string, string]>;
  capabilityArgs: CapabilityArgs;
}
