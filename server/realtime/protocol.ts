// The Phoenix channel frames Supabase Realtime speaks, as the pinned @supabase/supabase-js uses them:
// vsn 1.0.0 sends JSON objects, vsn 2.0.0 JSON arrays [join_ref, ref, topic, event, payload] (plus
// binary frames for client broadcasts, which this read-only gateway refuses).
import { z } from 'zod';

export type Vsn = '1.0.0' | '2.0.0';

export interface Frame {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: unknown;
}

const Ref = z.string().max(255).nullable();
const ArrayFrame = z.tuple([Ref, Ref, z.string().min(1).max(255), z.string().min(1).max(255), z.unknown()]);
const ObjectFrame = z.object({
  join_ref: Ref.optional(),
  ref: Ref.optional(),
  topic: z.string().min(1).max(255),
  event: z.string().min(1).max(255),
  payload: z.unknown(),
});

export class FrameError extends Error {}

export function decode(vsn: Vsn, text: string): Frame {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new FrameError('malformed frame: not JSON');
  }
  if (vsn === '2.0.0') {
    const f = ArrayFrame.safeParse(raw);
    if (!f.success) throw new FrameError('malformed frame: expected [join_ref, ref, topic, event, payload]');
    const [joinRef, ref, topic, event, payload] = f.data;
    return { joinRef, ref, topic, event, payload };
  }
  const f = ObjectFrame.safeParse(raw);
  if (!f.success) throw new FrameError('malformed frame: expected {topic, event, payload, ref}');
  return { joinRef: f.data.join_ref ?? null, ref: f.data.ref ?? null, topic: f.data.topic, event: f.data.event, payload: f.data.payload };
}

export function encode(vsn: Vsn, f: Frame): string {
  return vsn === '2.0.0'
    ? JSON.stringify([f.joinRef, f.ref, f.topic, f.event, f.payload])
    : JSON.stringify({ join_ref: f.joinRef, ref: f.ref, topic: f.topic, event: f.event, payload: f.payload });
}

/** What phx_join carries (server-side validation as in Supabase's Join/Config payloads). */
export const JoinPayload = z.looseObject({
  config: z
    .looseObject({
      broadcast: z.looseObject({ ack: z.boolean().optional(), self: z.boolean().optional() }).optional(),
      presence: z.looseObject({ enabled: z.boolean().optional(), key: z.string().optional() }).optional(),
      postgres_changes: z.array(z.unknown()).optional(),
      private: z.boolean().optional(),
    })
    .optional(),
  // null: supabase-js 2.119 puts whatever its accessToken callback last answered, none included.
  access_token: z.string().max(16_384).nullable().optional(),
});

/** A token pushed to a joined channel; null is what supabase-js sends when it has none (ignored). */
export const AccessTokenPayload = z.looseObject({ access_token: z.string().min(1).max(16_384).nullable() });
