// The object store the composition root hands out makes its adapter (and loads the AWS SDK)
// at its first use, not before; its credentials are the adapter's own without loading it.
import { describe, expect, it } from 'vitest';
import { createS3ObjectStore } from '../../src/adapters/objectstore-s3/s3-object-store.ts';
import type { ObjectStore } from '../../src/core/ports.ts';
import { lazyObjectStore, lazyS3ObjectStore } from '../../src/main/lazy-object-store.ts';

const CREDENTIALS = { endpoint: 'http://s3', verify: true, access_key: 'AK', secret_key: 'SK', region: 'r' };

/** An adapter that records calls; `makes` counts how often it was made. */
const recording = () => {
  const calls: string[] = [];
  let makes = 0;
  const store = new Proxy({} as ObjectStore, {
    // Not a thenable: `then` stays undefined, or awaiting the store would call it.
    get: (_, name: string) =>
      name === 'then'
        ? undefined
        : async (...args: unknown[]) => {
            calls.push(`${name}(${args.map((a) => JSON.stringify(a)).join(',')})`);
            return name === 'bucketExists' ? true : undefined;
          },
  });
  return {
    calls,
    get makes() {
      return makes;
    },
    make: async () => {
      makes++;
      return store;
    },
  };
};

describe('lazyObjectStore', () => {
  it('makes nothing until the first call, then makes once and passes every call through', async () => {
    const r = recording();
    const lazy = lazyObjectStore(CREDENTIALS, r.make);
    expect(lazy.credentials).toEqual(CREDENTIALS);
    expect(r.makes).toBe(0);
    expect(await lazy.bucketExists('b')).toBe(true);
    await Promise.all([
      lazy.ensureBucket('b'),
      lazy.deleteObject('b', 'k'),
      lazy.presign('b', 'k', 'upload', 60),
    ]);
    await lazy.putObject('b', 'k', new Uint8Array([1]), 1);
    expect(r.makes).toBe(1);
    expect(r.calls).toEqual([
      'bucketExists("b")',
      'ensureBucket("b")',
      'deleteObject("b","k")',
      'presign("b","k","upload",60)',
      'putObject("b","k",{"0":1},1)',
    ]);
    await lazy.close();
    expect(r.calls.at(-1)).toBe('close()');
  });

  it('closes without making the adapter when it was never used', async () => {
    const r = recording();
    await lazyObjectStore(CREDENTIALS, r.make).close();
    expect(r.makes).toBe(0);
    expect(r.calls).toEqual([]);
  });

  it('tries again after a failed load instead of keeping the failure', async () => {
    const r = recording();
    let attempts = 0;
    const lazy = lazyObjectStore(CREDENTIALS, async () => {
      if (++attempts === 1) throw new Error('cannot load');
      return r.make();
    });
    await expect(lazy.listBuckets()).rejects.toThrow('cannot load');
    await lazy.listBuckets();
    expect(attempts).toBe(2);
    expect(r.calls).toEqual(['listBuckets()']);
  });
});

describe('lazyS3ObjectStore', () => {
  it('knows the same credentials as the S3 adapter, defaults included', async () => {
    for (const options of [
      { endpoint: 'http://127.0.0.1:9000', accessKey: 'AK', secretKey: 'SK' },
      {
        endpoint: 'https://s3.example',
        accessKey: 'AK',
        secretKey: 'SK',
        region: 'eu-west-1',
        verify: false,
      },
    ]) {
      const real = createS3ObjectStore(options);
      expect(lazyS3ObjectStore(options).credentials).toEqual(real.credentials);
      await real.close();
    }
  });
});
