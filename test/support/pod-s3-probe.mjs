// Run inside a fake-kubelet pod: reads the supervisor's function_config.yaml the way
// faas-supervisor does (./oscar/config under the fake's working dir) and tries, with the
// minio.default keys it finds there, each access named in PROBES ("read:bucket/key",
// "write:bucket/key", "list:bucket"). Prints one JSON line: access → "ok" | "denied".
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.env.REPO_ROOT, 'package.json'));
const { S3Client, GetObjectCommand, PutObjectCommand, ListObjectsV2Command } = require('@aws-sdk/client-s3');
const { parse } = require('yaml');

const config = parse(readFileSync('oscar/config/function_config.yaml', 'utf8'));
const p = config.storage_providers.minio.default;
const s3 = new S3Client({
  endpoint: p.endpoint,
  region: p.region,
  forcePathStyle: true,
  credentials: { accessKeyId: p.access_key, secretAccessKey: p.secret_key },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const out = {};
for (const probe of process.env.PROBES.split(' ')) {
  const [action, path] = probe.split(':');
  const [bucket, ...rest] = path.split('/');
  const key = rest.join('/');
  try {
    if (action === 'read')
      await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body.transformToString();
    else if (action === 'write')
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'from the pod' }));
    else await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    out[probe] = 'ok';
  } catch (e) {
    out[probe] = e.$metadata?.httpStatusCode === 403 ? 'denied' : `error ${e.name}`;
  }
}
console.log(`PROBE ${JSON.stringify(out)}`);
