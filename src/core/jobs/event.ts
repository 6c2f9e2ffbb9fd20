// What a job's event is, as faas-supervisor reads it: an S3/MinIO notification (the input
// is an object to download), a delegated event wrapping one, or a direct payload (the input
// file is the payload: written as is when it is JSON, base64-decoded otherwise).

export type ParsedEvent =
  | { kind: 'storage'; provider: string; bucket: string; key: string; eventText: string }
  | { kind: 'payload'; fileBytes: Uint8Array; eventText: string };

const decoder = new TextDecoder('utf-8', { fatal: false });
const BASE64_RE = /^[A-Za-z0-9+/\r\n]*={0,2}\s*$/;

const tryJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};

const isObj = (v: unknown): v is Record<string, any> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Bucket and key of an S3-style notification, or undefined. Keys arrive URL-encoded. */
export const storageRecord = (event: unknown): { bucket: string; key: string } | undefined => {
  if (!isObj(event) || !Array.isArray(event.Records) || !isObj(event.Records[0])) return undefined;
  const s3 = event.Records[0].s3;
  if (!isObj(s3) || !isObj(s3.bucket) || !isObj(s3.object)) return undefined;
  const bucket = s3.bucket.name;
  const rawKey = s3.object.key;
  if (typeof bucket !== 'string' || typeof rawKey !== 'string' || !bucket || !rawKey) return undefined;
  let key: string;
  try {
    key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
  } catch {
    key = rawKey;
  }
  return { bucket, key };
};

/** Decodes a base64 payload; bytes as given when the text is not base64. */
const payloadBytes = (raw: Uint8Array, text: string): Uint8Array => {
  const trimmed = text.trim();
  if (trimmed.length > 0 && BASE64_RE.test(trimmed)) {
    const decoded = Buffer.from(trimmed, 'base64');
    // Buffer.from ignores junk silently: accept only a clean round trip.
    if (decoded.toString('base64').replace(/=+$/, '') === trimmed.replace(/\s+/g, '').replace(/=+$/, '')) {
      return new Uint8Array(decoded);
    }
  }
  return raw;
};

/** Classifies a raw event body. `defaultProvider` applies to notifications without one. */
export const parseEvent = (raw: Uint8Array, defaultProvider = 'minio.default'): ParsedEvent => {
  const text = decoder.decode(raw);
  const json = tryJson(text);
  // Delegated: {"storage_provider": "minio.<origin>", "event": "<original event text>"}
  if (isObj(json) && typeof json.storage_provider === 'string' && typeof json.event === 'string') {
    const inner = parseEvent(new TextEncoder().encode(json.event), json.storage_provider);
    return inner;
  }
  const record = storageRecord(json);
  if (record) return { kind: 'storage', provider: defaultProvider, ...record, eventText: text };
  if (json !== undefined) return { kind: 'payload', fileBytes: raw, eventText: text };
  return { kind: 'payload', fileBytes: payloadBytes(raw, text), eventText: text };
};

/** An S3-style ObjectCreated notification, as MinIO sends it. */
export const objectCreatedEvent = (bucket: string, key: string, size: number, at = new Date()): string =>
  JSON.stringify({
    EventName: 's3:ObjectCreated:Put',
    Key: `${bucket}/${key}`,
    Records: [
      {
        eventVersion: '2.0',
        eventSource: 'minio:s3',
        eventTime: at.toISOString(),
        eventName: 's3:ObjectCreated:Put',
        s3: {
          s3SchemaVersion: '1.0',
          bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
          object: { key: encodeURIComponent(key).replace(/%2F/g, '/'), size },
        },
      },
    ],
  });

/** The input file's name: the object's base name, or faas-supervisor's event-file name. */
export const inputFileName = (ev: ParsedEvent, jobId: string): string =>
  ev.kind === 'storage' ? ev.key.split('/').pop() || 'input' : `event-file-${jobId}`;
