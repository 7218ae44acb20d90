// The official Dev Container Feature metadata schema (devcontainers/spec, schemas/devContainerFeature.schema.json,
// JSON Schema draft-07) restated in zod, property for property, so the test validates offline: the same
// properties and types, additionalProperties false on the feature, its options and mounts, the three
// option shapes (boolean; string with enum; string with proposals), required id and version.
import { z } from 'zod';

const Command = z.union([z.string(), z.array(z.string()), z.record(z.string(), z.union([z.string(), z.array(z.string())]))]);

const FeatureOption = z.union([
  z.strictObject({ type: z.literal('boolean'), default: z.boolean(), description: z.string().optional() }),
  z.strictObject({ type: z.literal('string'), enum: z.array(z.string()), default: z.string(), description: z.string().optional() }),
  z.strictObject({ type: z.literal('string'), default: z.string(), proposals: z.array(z.string()).optional(), description: z.string().optional() }),
]);

const Mount = z.strictObject({ type: z.enum(['bind', 'volume']), source: z.string(), target: z.string() });

export const DevContainerFeature = z.strictObject({
  id: z.string(),
  version: z.string(),
  name: z.string().optional(),
  description: z.string().optional(),
  documentationURL: z.string().optional(),
  licenseURL: z.string().optional(),
  options: z.record(z.string(), FeatureOption).optional(),
  containerEnv: z.record(z.string(), z.string()).optional(),
  privileged: z.boolean().optional(),
  init: z.boolean().optional(),
  capAdd: z.array(z.string()).optional(),
  securityOpt: z.array(z.string()).optional(),
  entrypoint: z.string().optional(),
  customizations: z.record(z.string(), z.unknown()).optional(),
  installsAfter: z.array(z.string()).optional(),
  legacyIds: z.array(z.string()).optional(),
  deprecated: z.boolean().optional(),
  mounts: z.array(Mount).optional(),
  onCreateCommand: Command.optional(),
  updateContentCommand: Command.optional(),
  postCreateCommand: Command.optional(),
  postStartCommand: Command.optional(),
  postAttachCommand: Command.optional(),
});
