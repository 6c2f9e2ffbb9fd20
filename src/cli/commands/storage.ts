// `flotilla storage put|get|ls`: objects in the cluster's store, through presigned URLs.
import { createReadStream } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { jobsApi } from '../../../client/api-client.ts';
import { type ClientFlags, clientFrom, printJson, printTable, run, withClientOptions } from '../common.ts';

const splitTarget = (target: string): { bucket: string; key: string } => {
  const clean = target.replace(/^\/+/, '');
  const slash = clean.indexOf('/');
  return slash < 0
    ? { bucket: clean, key: '' }
    : { bucket: clean.slice(0, slash), key: clean.slice(slash + 1) };
};

export const registerStorage = (program: Command): Command => {
  const storage = program.command('storage').description('put, get and list objects in the cluster storage');

  withClientOptions(
    storage
      .command('put')
      .description('upload a file to BUCKET/PATH (a path ending in "/" keeps the file name)')
      .argument('<file>')
      .argument('<target>', 'BUCKET/PATH'),
  ).action(
    run(async (file: string, target: string, opts: ClientFlags) => {
      const { bucket, key: rawKey } = splitTarget(target);
      const key = !rawKey || rawKey.endsWith('/') ? `${rawKey}${basename(file)}` : rawKey;
      const size = (
        await stat(file).catch(() => {
          throw new Error(`cannot read ${file}: no such file`);
        })
      ).size;
      const signed = await jobsApi(clientFrom(opts)).presign(bucket, key, 'upload');
      const res = await fetch(signed.url, {
        method: 'PUT',
        headers: { ...signed.headers, 'content-length': String(size) },
        body: createReadStream(file) as unknown as BodyInit,
        duplex: 'half',
      } as RequestInit);
      if (!res.ok) throw new Error(`upload of ${file} failed: HTTP ${res.status}`);
      if (opts.json) printJson({ bucket, key, size });
      else process.stdout.write(`uploaded ${file} to ${bucket}/${key} (${size} bytes)\n`);
    }),
  );

  withClientOptions(
    storage
      .command('get')
      .description('download BUCKET/KEY to a file (default: its base name) or "-" for stdout')
      .argument('<source>', 'BUCKET/KEY')
      .argument('[file]'),
  ).action(
    run(async (source: string, file: string | undefined, opts: ClientFlags) => {
      const { bucket, key } = splitTarget(source);
      if (!key) throw new Error('give BUCKET/KEY');
      const signed = await jobsApi(clientFrom(opts)).presign(bucket, key, 'download');
      const res = await fetch(signed.url, { headers: signed.headers });
      if (res.status === 404) throw new Error(`${bucket}/${key} not found`);
      if (!res.ok) throw new Error(`download of ${bucket}/${key} failed: HTTP ${res.status}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      if (file === '-') return void process.stdout.write(bytes);
      const out = file ?? basename(key);
      await writeFile(out, bytes);
      if (opts.json) printJson({ bucket, key, file: out, size: bytes.length });
      else process.stderr.write(`downloaded ${bucket}/${key} to ${out} (${bytes.length} bytes)\n`);
    }),
  );

  withClientOptions(
    storage
      .command('ls')
      .description('list buckets, or the objects under BUCKET[/PREFIX]')
      .argument('[target]'),
  ).action(
    run(async (target: string | undefined, opts: ClientFlags) => {
      const api = jobsApi(clientFrom(opts));
      if (!target) {
        const buckets = await api.buckets();
        if (opts.json) return printJson(buckets);
        return printTable(
          ['BUCKET', 'VISIBILITY'],
          buckets.map((b) => [b.bucket_name, b.visibility]),
        );
      }
      const { bucket, key: prefix } = splitTarget(target);
      const rows: Array<{ object_name: string; size_bytes: number; last_modified: string }> = [];
      let page: string | undefined;
      do {
        const res = await api.objects(bucket, page);
        rows.push(...res.objects.filter((o) => o.object_name.startsWith(prefix)));
        page = res.next_page || undefined;
      } while (page);
      if (opts.json) return printJson(rows);
      printTable(
        ['OBJECT', 'SIZE', 'MODIFIED'],
        rows.map((o) => [o.object_name, String(o.size_bytes), o.last_modified]),
      );
    }),
  );
  return storage;
};
