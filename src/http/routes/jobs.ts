// Invocation routes: POST /job/{service} (async, stored before the 201) and
// POST /run/{service} (sync). Bodies are raw bytes: the event is whatever the client sends.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { runSync } from '../../app/jobs/sync-run.ts';
import { HOLD_HEADER } from '../../core/delegation/hand-over.ts';
import { useRawBodies } from '../body-parsers.ts';
import type { HttpContext } from '../context.ts';

const params = z.object({ serviceName: z.string().min(1).max(253) });
const handOverParams = params.extend({ delegatedId: z.string().min(1).max(128) });
const auth: Array<Record<string, string[]>> = [{ bearer: [] }, { basic: [] }];
const bodyOf = (body: unknown): Uint8Array => (body instanceof Uint8Array ? body : new Uint8Array(0));

export const jobRoutes = async (app: FastifyInstance, ctx: HttpContext): Promise<void> => {
  useRawBodies(app);

  app.post(
    '/job/:serviceName',
    { schema: { tags: ['async'], summary: 'Invoke a service asynchronously', security: auth, params } },
    async (req, reply) => {
      const { serviceName } = req.params as z.infer<typeof params>;
      const header = (name: string) => {
        const v = req.headers[name];
        return typeof v === 'string' ? v : undefined;
      };
      const accepted = await ctx.intake.submit(serviceName, bodyOf(req.body), {
        authorization: req.headers.authorization,
        delegatedId: header('x-delegated-job-id'),
        delegatedFrom: header('x-delegated-from'),
        delegationToken: header('x-delegation-token'),
        hold: header(HOLD_HEADER),
      });
      reply.status(201).send(accepted);
    },
  );

  // The hand-over's second step (ADR 13): the origin confirms the one cluster that runs a
  // held job, or abandons a hold after it gave the job to another.
  for (const step of ['confirm', 'abandon'] as const) {
    app.post(
      `/job/:serviceName/delegated/:delegatedId/${step}`,
      {
        schema: {
          tags: ['async'],
          summary: step === 'confirm' ? 'Confirm a held delegated job' : 'Abandon a held delegated job',
          security: auth,
          params: handOverParams,
        },
      },
      async (req) => {
        const { serviceName, delegatedId } = req.params as z.infer<typeof handOverParams>;
        const from = req.headers['x-delegated-from'];
        const headers = {
          authorization: req.headers.authorization,
          delegatedFrom: typeof from === 'string' ? from : undefined,
        };
        return step === 'confirm'
          ? ctx.intake.confirm(serviceName, delegatedId, headers)
          : ctx.intake.abandon(serviceName, delegatedId, headers);
      },
    );
  }

  app.post(
    '/run/:serviceName',
    { schema: { tags: ['sync'], summary: 'Invoke a service synchronously', security: auth, params } },
    async (req, reply) => {
      const { serviceName } = req.params as z.infer<typeof params>;
      const { service } = await ctx.intake.authorize(
        serviceName,
        req.headers.authorization,
        bodyOf(req.body),
      );
      // The caller going away cancels the run.
      const abort = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableFinished) abort.abort('the caller disconnected');
      };
      req.raw.socket.once('close', onClose);
      try {
        const text = await runSync(ctx.sync, { service, body: bodyOf(req.body), signal: abort.signal });
        reply.status(200).type('text/plain; charset=utf-8').send(text);
      } finally {
        req.raw.socket.off('close', onClose);
      }
    },
  );
};
