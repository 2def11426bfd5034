// Patch 01 - server-monitoring flood (written for @push.rocks/smartmongo 2.2.0)
//
// Defect: a pooled libmongoc client (mongoc_client_pool_t) monitors the server
// with the "streaming" protocol: it sends hello/isMaster carrying the
// topologyVersion from the previous reply plus maxAwaitTimeMS, and expects the
// server to hold the reply until the topology changes or maxAwaitTimeMS passes.
// CongoDB answers at once, and with a fresh random processId each time
// (server/handlers/HelloHandler.js, handle(): `processId: new ObjectId()`), so
// the client sees a "new server" every reply and asks again immediately:
// ~13000 hello/s and a full CPU core for one idle pool.
//
// Fix:
//  - HelloHandler.prototype.handle: topologyVersion is { processId, counter: 0 }
//    with one processId per CongoServer for its lifetime (our topology never
//    changes, so counter stays 0).
//  - CommandRouter.prototype.route: a hello/isMaster that carries our current
//    topologyVersion and maxAwaitTimeMS waits maxAwaitTimeMS before being
//    answered, as mongod does when nothing changed. A stale or foreign
//    topologyVersion is answered at once (spec behaviour). The wait ends early
//    when the client connection closes or the server stops. The connection is
//    the 2nd argument to route(), passed by patch 06; without it the wait just
//    cannot end early on close.
//  - CongoServer.prototype.stop: ends all pending waits first.
export const FOR_VERSION = '2.2.0';

export function apply({ congo, handlers, bson }) {
  const { CommandRouter, CongoServer } = congo;
  const { HelloHandler } = handlers;

  const processIds = new WeakMap(); // CongoServer -> ObjectId
  const pending = new WeakMap(); // CongoServer -> Set<() => void> (end a wait)

  const topologyVersion = (server) => {
    if (!processIds.has(server)) processIds.set(server, new bson.ObjectId());
    return { processId: processIds.get(server), counter: bson.Long.fromNumber(0) };
  };
  const toNumber = (v) => (typeof v === 'object' && v !== null ? v.toNumber() : Number(v));

  const origHandle = HelloHandler.prototype.handle;
  HelloHandler.prototype.handle = async function (context) {
    const reply = await origHandle.call(this, context);
    reply.topologyVersion = topologyVersion(context.server);
    return reply;
  };

  function waitQuietly(server, ms, socket) {
    return new Promise((resolve) => {
      if (!pending.has(server)) pending.set(server, new Set());
      const set = pending.get(server);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        socket?.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      socket?.once('close', done);
    });
  }

  const origRoute = CommandRouter.prototype.route;
  CommandRouter.prototype.route = async function (parsed, conn) {
    const { commandName, command } = parsed;
    const isHello = commandName === 'hello' || commandName === 'isMaster' || commandName === 'ismaster';
    if (isHello && command.topologyVersion && command.maxAwaitTimeMS !== undefined) {
      const ours = topologyVersion(this.server);
      const theirs = command.topologyVersion;
      const current =
        theirs.processId?.toHexString?.() === ours.processId.toHexString() && toNumber(theirs.counter) === 0;
      const ms = toNumber(command.maxAwaitTimeMS);
      if (current && ms > 0 && !conn?.socket?.destroyed) await waitQuietly(this.server, ms, conn?.socket);
    }
    return origRoute.call(this, parsed, conn);
  };

  const origStop = CongoServer.prototype.stop;
  CongoServer.prototype.stop = async function () {
    for (const done of [...(pending.get(this) ?? [])]) done();
    return origStop.call(this);
  };
}
