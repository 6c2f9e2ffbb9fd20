// Opens (creating) a PGlite store in argv[2], prints "open", and waits to be killed. Used to
// interrupt a start in the middle of initdb.
import { PgliteStore } from '../../src/adapters/store-pglite/pglite-store.ts';

const store = await PgliteStore.open(process.argv[2]);
process.stdout.write('open\n');
await store.close();
