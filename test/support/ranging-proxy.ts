import { createServer, connect, type Server, type Socket } from 'node:net';
import asn1 from 'asn1';

// Windows AD returns at most MaxValRange (1,500) values of a multi-valued attribute per search result entry: a
// 1,550-member group comes back as `member;range=0-1499` and the client must ask again for `member;range=1500-*`.
// Samba 4.17 never does this, so this loopback proxy sits in front of Samba and does it the Windows way:
//
// - Client → server: a SearchRequest whose attribute list names `attr;range=low-high` (or `low-*`) is forwarded with
//   plain `attr` instead (so Samba returns every value), and the requested range is remembered per message ID.
// - Server → client: in each SearchResultEntry of that search, an attribute with a requested range is cut to
//   [low, min(high, low+maxValues-1)] and renamed `attr;range=low-high`, or `attr;range=low-*` when the cut reaches
//   the last value; an attribute without a requested range but with more than maxValues values becomes
//   `attr;range=0-(maxValues-1)`. A range starting past the last value comes back as `attr;range=low-*` with no
//   values. Every other message passes through byte for byte.
//
// Plain LDAP only: StartTLS or SASL integrity/confidentiality through the proxy are not supported (the bytes would no
// longer be LDAP messages). BER is read and written with `asn1` (ldapts' own dependency).

const { BerReader, BerWriter, Ber } = asn1;
type Reader = InstanceType<typeof BerReader>;
type Writer = InstanceType<typeof BerWriter>;

const SEARCH_REQUEST = 0x63; // [APPLICATION 3]
const SEARCH_RESULT_ENTRY = 0x64; // [APPLICATION 4]
const SEARCH_RESULT_DONE = 0x65; // [APPLICATION 5]
const SET = 0x31;

export interface RangingProxyOptions {
  /** ldap://host:port of the real server (Samba). */
  target: string;
  /** Windows' MaxValRange: 1,500 by default. */
  maxValues?: number;
}

export interface RangingProxy {
  /** ldap://127.0.0.1:PORT */
  url: string;
  /** How many entries had an attribute cut or renamed (for tests to check the proxy did something). */
  readonly rangedEntries: number;
  /** Closes the listener and every proxied connection. Safe to call twice. */
  stop(): Promise<void>;
}

interface Range {
  low: number;
  /** undefined for `*` */
  high: number | undefined;
}

/** `member;range=1500-*` → { base: 'member', range }; any other option is kept in base. */
export function parseRangedAttribute(name: string): { base: string; range?: Range } {
  const m = /^(.*?);range=(\d+)-(\d+|\*)(;.*)?$/i.exec(name);
  if (!m) return { base: name };
  const low = Number(m[2]);
  const high = m[3] === '*' ? undefined : Number(m[3]);
  return { base: m[1]! + (m[4] ?? ''), range: { low, high } };
}

/** Which values to return for an attribute of `count` values, and under which name (undefined: unchanged). */
export function rangeFor(type: string, count: number, requested: Range | undefined, maxValues: number): { name: string; start: number; end: number } | undefined {
  if (!requested) {
    if (count <= maxValues) return undefined;
    return { name: `${type};range=0-${maxValues - 1}`, start: 0, end: maxValues };
  }
  const low = requested.low;
  if (low >= count) return { name: `${type};range=${low}-*`, start: count, end: count };
  const lastWanted = Math.min(requested.high ?? count - 1, count - 1, low + maxValues - 1);
  if (lastWanted < low) return { name: `${type};range=${low}-${requested.high}`, start: low, end: low };
  const name = lastWanted >= count - 1 ? `${type};range=${low}-*` : `${type};range=${low}-${lastWanted}`;
  return { name, start: low, end: lastWanted + 1 };
}

export async function startRangingProxy(o: RangingProxyOptions): Promise<RangingProxy> {
  const target = new URL(o.target);
  if (target.protocol !== 'ldap:') throw new Error(`the ranging proxy speaks plain LDAP only (target ${o.target})`);
  const targetHost = target.hostname.replace(/^\[|\]$/g, '');
  const targetPort = target.port ? Number(target.port) : 389;
  const maxValues = o.maxValues ?? 1500;
  if (!Number.isInteger(maxValues) || maxValues < 1) throw new Error(`maxValues must be a positive integer (got ${maxValues})`);

  const sockets = new Set<Socket>();
  let rangedEntries = 0;

  const server: Server = createServer((client) => {
    const upstream = connect({ host: targetHost, port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    // message ID → lower-cased attribute base name → requested range, for searches in flight on this connection
    const searches = new Map<number, Map<string, Range>>();
    const fail = (e: unknown) => {
      const message = e instanceof Error ? e.message : String(e);
      process.emitWarning(`ranging proxy: dropping connection: ${message}`);
      client.destroy();
      upstream.destroy();
    };
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);

    frame(client, (message) => {
      try {
        upstream.write(rewriteRequest(message, searches));
      } catch (e) {
        fail(e);
      }
    }, fail);
    frame(upstream, (message) => {
      try {
        const { out, ranged } = rewriteResponse(message, searches, maxValues);
        if (ranged) rangedEntries++;
        client.write(out);
      } catch (e) {
        fail(e);
      }
    }, fail);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('the ranging proxy has no address');

  let stopped: Promise<void> | undefined;
  return {
    url: `ldap://127.0.0.1:${address.port}`,
    get rangedEntries() {
      return rangedEntries;
    },
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        sockets.clear();
        const timer = setTimeout(resolve, 5000); // bounded: close() waits for connections, which are destroyed above
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopped;
    },
  };
}

/** Splits a socket's byte stream into whole LDAPMessage TLVs. */
function frame(socket: Socket, onMessage: (message: Buffer) => void, onError: (e: unknown) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    try {
      for (;;) {
        if (pending.length < 2) return;
        const reader = new BerReader(pending);
        if (reader.readSequence(Ber.Sequence | Ber.Constructor) === null) return; // length bytes incomplete
        const total = reader.offset + reader.length;
        if (pending.length < total) return;
        const message = pending.subarray(0, total);
        pending = pending.subarray(total);
        onMessage(message);
      }
    } catch (e) {
      onError(e);
    }
  });
}

/** Reads one TLV (any tag) and returns its tag and content, leaving the reader after it. */
function readRaw(reader: Reader): { tag: number; content: Buffer } {
  const tag = reader.peek();
  if (tag === null || reader.readSequence(tag) === null) throw new Error('truncated BER element');
  const start = reader.offset;
  const content = reader._buf.subarray(start, start + reader.length);
  if (content.length !== reader.length) throw new Error('truncated BER element');
  reader._offset = start + reader.length;
  return { tag, content };
}

/** BerWriter.writeBuffer asserts on an empty buffer: an empty OCTET STRING (the root DSE's DN) needs this. */
function writeTlv(w: Writer, tag: number, content: Buffer): void {
  if (content.length === 0) {
    w.writeByte(tag);
    w.writeLength(0);
  } else {
    w.writeBuffer(content, tag);
  }
}

function readInt(reader: Reader): number {
  const v = reader.readInt();
  if (v === null) throw new Error('truncated INTEGER');
  return v;
}

function readOctets(reader: Reader): Buffer {
  const v = reader.readString(Ber.OctetString, true);
  if (v === null) throw new Error('truncated OCTET STRING');
  return v;
}

/** Opens the LDAPMessage envelope: message ID, protocolOp tag; leaves the reader inside the protocolOp. */
function openMessage(message: Buffer): { reader: Reader; messageId: number; op: number; opEnd: number } {
  const reader = new BerReader(message);
  reader.readSequence(Ber.Sequence | Ber.Constructor);
  const messageId = readInt(reader);
  const op = reader.peek();
  if (op === null) throw new Error('LDAPMessage without protocolOp');
  if (reader.readSequence(op) === null) throw new Error('truncated protocolOp');
  return { reader, messageId, op, opEnd: reader.offset + reader.length };
}

/** The controls ([0] Controls) that follow the protocolOp, raw, if any. */
function trailingControls(reader: Reader, opEnd: number, messageEnd: number): { tag: number; content: Buffer } | undefined {
  reader._offset = opEnd;
  return opEnd < messageEnd ? readRaw(reader) : undefined;
}

function rewriteRequest(message: Buffer, searches: Map<number, Map<string, Range>>): Buffer {
  const { reader, messageId, op, opEnd } = openMessage(message);
  if (op !== SEARCH_REQUEST) return message;
  const baseObject = readOctets(reader);
  const scope = reader.readEnumeration();
  const deref = reader.readEnumeration();
  const sizeLimit = readInt(reader);
  const timeLimit = readInt(reader);
  const typesOnly = reader.readBoolean();
  const filter = readRaw(reader);
  if (reader.readSequence(Ber.Sequence | Ber.Constructor) === null) throw new Error('truncated attribute list');
  const attributesEnd = reader.offset + reader.length;
  const attributes: string[] = [];
  while (reader.offset < attributesEnd) attributes.push(readOctets(reader).toString('utf8'));

  const ranges = new Map<string, Range>();
  const forwarded = attributes.map((name) => {
    const { base, range } = parseRangedAttribute(name);
    if (range) ranges.set(base.toLowerCase(), range);
    return base;
  });
  searches.set(messageId, ranges);
  if (ranges.size === 0) return message;

  const controls = trailingControls(reader, opEnd, message.length);
  const w: Writer = new BerWriter();
  w.startSequence();
  w.writeInt(messageId);
  w.startSequence(SEARCH_REQUEST);
  writeTlv(w, Ber.OctetString, baseObject);
  w.writeEnumeration(scope ?? 0);
  w.writeEnumeration(deref ?? 0);
  w.writeInt(sizeLimit);
  w.writeInt(timeLimit);
  w.writeBoolean(!!typesOnly);
  writeTlv(w, filter.tag, filter.content);
  w.startSequence();
  for (const name of [...new Set(forwarded)]) w.writeString(name);
  w.endSequence();
  w.endSequence();
  if (controls) writeTlv(w, controls.tag, controls.content);
  w.endSequence();
  return w.buffer;
}

function rewriteResponse(message: Buffer, searches: Map<number, Map<string, Range>>, maxValues: number): { out: Buffer; ranged: boolean } {
  const { reader, messageId, op, opEnd } = openMessage(message);
  if (op === SEARCH_RESULT_DONE) {
    searches.delete(messageId);
    return { out: message, ranged: false };
  }
  if (op !== SEARCH_RESULT_ENTRY) return { out: message, ranged: false };
  const requested = searches.get(messageId) ?? new Map<string, Range>();

  const objectName = readOctets(reader);
  if (reader.readSequence(Ber.Sequence | Ber.Constructor) === null) throw new Error('truncated attribute list');
  const attributesEnd = reader.offset + reader.length;
  const attributes: Array<{ type: string; values: Buffer[] }> = [];
  while (reader.offset < attributesEnd) {
    if (reader.readSequence(Ber.Sequence | Ber.Constructor) === null) throw new Error('truncated attribute');
    const type = readOctets(reader).toString('utf8');
    if (reader.readSequence(SET) === null) throw new Error('truncated value set');
    const valuesEnd = reader.offset + reader.length;
    const values: Buffer[] = [];
    while (reader.offset < valuesEnd) values.push(readOctets(reader));
    attributes.push({ type, values });
  }

  let ranged = false;
  const out = attributes.map(({ type, values }) => {
    const { base } = parseRangedAttribute(type);
    const cut = rangeFor(base, values.length, requested.get(base.toLowerCase()), maxValues);
    if (!cut) return { type, values };
    ranged = true;
    return { type: cut.name, values: values.slice(cut.start, cut.end) };
  });
  if (!ranged) return { out: message, ranged: false };

  const controls = trailingControls(reader, opEnd, message.length);
  const w: Writer = new BerWriter({ size: message.length + 1024, growthFactor: 2 });
  w.startSequence();
  w.writeInt(messageId);
  w.startSequence(SEARCH_RESULT_ENTRY);
  writeTlv(w, Ber.OctetString, objectName);
  w.startSequence();
  for (const { type, values } of out) {
    w.startSequence();
    w.writeString(type);
    w.startSequence(SET);
    for (const v of values) writeTlv(w, Ber.OctetString, v);
    w.endSequence();
    w.endSequence();
  }
  w.endSequence();
  w.endSequence();
  if (controls) writeTlv(w, controls.tag, controls.content);
  w.endSequence();
  return { out: w.buffer, ranged: true };
}
