// Patch 06 - quadratic receive, message framing (written for @push.rocks/smartmongo 2.2.0)
//
// Defect: server/CongoServer.js handleData() does
// `state.buffer = Buffer.concat([state.buffer, data])` for every TCP chunk and
// processMessages() re-parses the header each time, so a message of N bytes
// arriving in 64 KiB chunks costs O(N^2) copying (a 15 MB insert took 2.4 s).
// Also: processMessages() is started again for every chunk while an earlier
// run is still awaiting a command, so two runs can work on one connection at
// once; replies to OP_MSG requests with the moreToCome flag (w:0 writes) are
// sent although the client expects none; a message that fails to parse is
// answered with responseTo 0, which the client cannot match.
//
// Fix: replace CongoServer.prototype.handleData with one that keeps the
// received chunks in a list and concatenates once, when the length announced
// in the 16-byte header is complete. Complete messages go to a per-connection
// queue worked off strictly in order (one command at a time per connection,
// like mongod). The connection state is passed to CommandRouter.route() as 2nd
// argument (patch 01 uses it). moreToCome requests get no reply; errors are
// answered with the request's id; a length outside 16..48000000 bytes closes
// the connection (mongod does the same).
export const FOR_VERSION = '2.2.0';

const MAX_MESSAGE = 48000000; // maxMessageSizeBytes announced in hello
const OP_QUERY = 2004;
const OP_MSG = 2013;
const MORE_TO_COME = 1 << 1;

export function apply({ congo }) {
  const { CongoServer, WireProtocol } = congo;

  CongoServer.prototype.handleData = function (state, data) {
    const rx = (state.devdbRx ??= { chunks: [], have: 0, need: 0, queue: [], busy: false });
    rx.chunks.push(data);
    rx.have += data.length;
    for (;;) {
      if (rx.need === 0) {
        if (rx.have < 4) break;
        if (rx.chunks[0].length < 4) rx.chunks = [Buffer.concat(rx.chunks)];
        rx.need = rx.chunks[0].readInt32LE(0);
        if (rx.need < 16 || rx.need > MAX_MESSAGE) {
          state.socket.destroy();
          return;
        }
      }
      if (rx.have < rx.need) break;
      const all = rx.chunks.length === 1 ? rx.chunks[0] : Buffer.concat(rx.chunks, rx.have);
      rx.queue.push(all.subarray(0, rx.need));
      const rest = all.subarray(rx.need);
      rx.chunks = rest.length ? [rest] : [];
      rx.have = rest.length;
      rx.need = 0;
    }
    if (!rx.busy) this.devdbDrain(state);
  };

  CongoServer.prototype.devdbDrain = async function (state) {
    const rx = state.devdbRx;
    rx.busy = true;
    try {
      while (rx.queue.length && !state.socket.destroyed) {
        await this.devdbHandleMessage(state, rx.queue.shift());
      }
    } finally {
      rx.busy = false;
    }
  };

  CongoServer.prototype.devdbHandleMessage = async function (state, msg) {
    const requestID = msg.readInt32LE(4);
    const opCode = msg.readInt32LE(12);
    const moreToCome = opCode === OP_MSG && msg.length >= 20 && (msg.readUInt32LE(16) & MORE_TO_COME) !== 0;
    let reply;
    try {
      const { command } = WireProtocol.parseMessage(msg);
      const response = await this.commandRouter.route(command, state);
      reply =
        opCode === OP_QUERY
          ? WireProtocol.encodeOpReplyResponse(requestID, [response])
          : WireProtocol.encodeOpMsgResponse(requestID, response);
    } catch (err) {
      reply = WireProtocol.encodeErrorResponse(requestID, 1, (err && err.message) || 'Internal error');
    }
    if (!moreToCome && !state.socket.destroyed) state.socket.write(reply);
  };
}
