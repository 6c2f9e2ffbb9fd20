// The footprint bench's baseline: a bare Fastify process that imports the given npm
// packages (the ones an idle manager loaded) and answers GET /health on the given port.
//   node bench/footprint-baseline.mjs PORT PACKAGE...
import Fastify from 'fastify';

const [port, ...packages] = process.argv.slice(2);
for (const name of packages) {
  try {
    await import(name);
  } catch {
    // A package without a root export (only reached through a subpath): nothing to load here.
  }
}
const app = Fastify();
app.get('/health', async () => 'Healthy');
await app.listen({ port: Number(port), host: '127.0.0.1' });
