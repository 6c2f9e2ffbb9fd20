// A server span per request, child of the sender's `traceparent` (the public server and the
// peer channel both). The span is entered at onRequest and again at preHandler: the body is
// read from the socket's own events, so the handler would not run in the onRequest context.
// With tracing off no hook is added (the request path is what it was without tracing).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { delegatedJobKey, type IncomingSpan, requestSpanName, type Tracing } from '../core/tracing.ts';

const SPAN = Symbol('flotilla.span');
type Traced = FastifyRequest & { [SPAN]?: IncomingSpan };

export const traceRequests = (app: FastifyInstance, tracing: Tracing | undefined, server: string): void => {
  if (!tracing?.enabled) return;
  app.addHook('onRequest', (req, _reply, done) => {
    const route = req.routeOptions.url;
    // The route template and the method only: never the URL, a query, a header value or a body.
    const span = tracing.incoming(requestSpanName(req.method, route, req.headers), req.headers, {
      'http.request.method': req.method,
      'http.route': route ?? 'unmatched',
      'flotilla.server': server,
    });
    (req as Traced)[SPAN] = span;
    span.enter(done);
  });
  app.addHook('preHandler', (req, _reply, done) => {
    const span = (req as Traced)[SPAN];
    if (span) span.enter(done);
    else done();
  });
  app.addHook('onResponse', (req, reply, done) => {
    const span = (req as Traced)[SPAN];
    if (span) {
      // A delegated job accepted here (authenticated, stored): its onward hand-over, made
      // later by the rescheduler, joins this request's trace.
      const { 'x-delegated-job-id': id, 'x-delegated-from': from } = req.headers;
      if (reply.statusCode < 300 && typeof id === 'string' && typeof from === 'string' && id.length <= 128)
        span.keep(delegatedJobKey(from.slice(0, 64), id));
      span.end(reply.statusCode);
    }
    done();
  });
  app.addHook('onRequestAbort', (req, done) => {
    (req as Traced)[SPAN]?.end(499);
    done();
  });
};
