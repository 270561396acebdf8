// The observer's page. Everything it shows as checked is checked here, in
// the browser, with Web Crypto: SHA-256 for the Merkle tree (RFC 9162
// section 2.1) and Ed25519 for the signed notes (c2sp.org/signed-note,
// c2sp.org/tlog-cosignature). It talks to this gateway only.
'use strict';

const enc = new TextEncoder();
const $ = (id) => document.getElementById(id);

class CheckError extends Error {}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function fromBase64(s, what) {
  let bin;
  try {
    bin = atob(s);
  } catch (_) {
    throw new CheckError(what + ' is not base64');
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const toHex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function same(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
}
const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

// --- Signed notes -------------------------------------------------------

// A verifier key: <name>+<hex key id>+<base64(type || public key)>.
async function parseVkey(vkey) {
  // The name has no '+'; the base64 after the key ID may.
  const first = vkey.indexOf('+');
  const second = vkey.indexOf('+', first + 1);
  if (first <= 0 || second < 0) throw new CheckError('a key is malformed');
  const name = vkey.slice(0, first);
  const idHex = vkey.slice(first + 1, second);
  const blob = vkey.slice(second + 1).replace(/\n$/, '');
  const raw = fromBase64(blob, 'a key');
  if (raw.length !== 33) throw new CheckError('a key is not an Ed25519 key');
  const key = { name, type: raw[0], pub: raw.slice(1), id: parseInt(idHex, 16) >>> 0 };
  const d = await sha256(concat(enc.encode(name + '\n'), Uint8Array.of(key.type), key.pub));
  const id = ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0;
  if (id !== key.id || !/^[0-9a-f]{8}$/.test(idHex)) {
    throw new CheckError('the key ID of ' + name + ' does not match its key');
  }
  return key;
}

// The body (ending in a newline) and the signature lines of a note.
function parseNote(text) {
  const split = text.lastIndexOf('\n\n');
  if (split < 0 || !text.endsWith('\n')) throw new CheckError('the checkpoint is not a signed note');
  const body = text.slice(0, split + 1);
  const sigs = text.slice(split + 2, -1).split('\n').map((line) => {
    if (!line.startsWith('\u2014 ')) throw new CheckError('a signature line is malformed');
    const [name, b64, extra] = line.slice(2).split(' ');
    if (!name || !b64 || extra !== undefined) throw new CheckError('a signature line is malformed');
    const bytes = fromBase64(b64, 'a signature');
    if (bytes.length < 4) throw new CheckError('a signature is too short');
    const id = ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
    return { name, id, bytes: bytes.slice(4) };
  });
  return { body, sigs };
}

async function ed25519(pub, sig, msg) {
  const key = await crypto.subtle.importKey('raw', pub, { name: 'Ed25519' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'Ed25519' }, key, sig, msg);
}

// The checkpoint's body, once the log's own signature on it verified.
async function verifyCheckpoint(text, logKey, origin) {
  const note = parseNote(text);
  const sig = note.sigs.find((s) => s.name === logKey.name && s.id === logKey.id);
  if (!sig) throw new CheckError('the checkpoint carries no signature by the log key');
  if (sig.bytes.length !== 64 || !(await ed25519(logKey.pub, sig.bytes, enc.encode(note.body)))) {
    throw new CheckError("the log's signature on the checkpoint is not valid");
  }
  const lines = note.body.split('\n');
  if (lines[0] !== origin) throw new CheckError('the checkpoint is for another log: ' + lines[0]);
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1] || '')) throw new CheckError('the checkpoint size is malformed');
  const root = fromBase64(lines[2] || '', 'the checkpoint root');
  if (root.length !== 32) throw new CheckError('the checkpoint root is not a hash');
  return { size: BigInt(lines[1]), root, note };
}

// The witness's cosignature time, if its cosignature verifies.
async function verifyCosignature(note, key) {
  const sig = note.sigs.find((s) => s.name === key.name && s.id === key.id);
  if (!sig || sig.bytes.length !== 72) return null;
  const time = new DataView(sig.bytes.buffer, sig.bytes.byteOffset, 8).getBigUint64(0);
  const msg = enc.encode('cosignature/v1\ntime ' + time.toString() + '\n' + note.body);
  return (await ed25519(key.pub, sig.bytes.slice(8), msg)) ? time : null;
}

// --- Merkle proofs (RFC 9162 sections 2.1.3.2 and 2.1.4.2) --------------

async function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && same(r, root);
}

async function verifyConsistency(size1, size2, proof, root1, root2) {
  if (size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && same(root1, root2);
  if (size1 === 0n) return proof.length === 0;
  let path = proof;
  if ((size1 & (size1 - 1n)) === 0n) path = [root1, ...proof];
  if (path.length === 0) return false;
  let fn = size1 - 1n;
  let sn = size2 - 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && same(fr, root1) && same(sr, root2);
}

// --- The receipt (docs/spec/receipt.md) ---------------------------------

// The log entry: version 1, election id (u8 length), received_at (u64),
// the message's SHA-256, the voter commitment.
function decodeEntry(bytes) {
  if (bytes.length < 2 || bytes[0] !== 1) throw new CheckError('the log entry is not version 1');
  const n = bytes[1];
  if (bytes.length !== 2 + n + 8 + 32 + 32) throw new CheckError('the log entry has the wrong length');
  const election = new TextDecoder('utf-8', { fatal: true }).decode(bytes.slice(2, 2 + n));
  const at = new DataView(bytes.buffer, bytes.byteOffset + 2 + n, 8).getBigUint64(0);
  const message = bytes.slice(10 + n, 42 + n);
  return { election, receivedAt: at, message };
}

function parseReceipt(raw) {
  let text = raw.replace(/\r\n?/g, '\n').replace(/^\s+/, '');
  if (!text.endsWith('\n')) text += '\n';
  if (text.length > 32768) throw new CheckError('this is too long to be a receipt');
  if (!text.startsWith('c2sp.org/tlog-proof@v1\n')) {
    throw new CheckError('this is not a receipt: it must begin with c2sp.org/tlog-proof@v1');
  }
  const rest = text.slice('c2sp.org/tlog-proof@v1\n'.length);
  const split = rest.indexOf('\n\n');
  if (split < 0) throw new CheckError('the receipt has no checkpoint');
  const lines = rest.slice(0, split).split('\n');
  if (!lines[0] || !lines[0].startsWith('extra ')) throw new CheckError('the receipt has no log entry');
  if (!lines[1] || !/^index (0|[1-9][0-9]*)$/.test(lines[1])) throw new CheckError('the receipt has no valid index');
  const entryBytes = fromBase64(lines[0].slice(6), 'the log entry');
  const proof = lines.slice(2).map((l) => {
    const h = fromBase64(l, 'a proof line');
    if (h.length !== 32) throw new CheckError('a proof line is not a hash');
    return h;
  });
  return {
    entryBytes,
    entry: decodeEntry(entryBytes),
    index: BigInt(lines[1].slice(6)),
    proof,
    checkpoint: rest.slice(split + 2),
  };
}

const when = (secs) => new Date(Number(secs) * 1000).toISOString().replace('.000Z', 'Z');

async function getJson(path) {
  const r = await fetch(path, { cache: 'no-store', credentials: 'omit' });
  if (!r.ok) throw new CheckError('the gateway answered ' + r.status + ' for ' + path);
  return r.json();
}

// Each step: [what was checked, ok]. Stops at the first that fails.
async function checkReceipt(raw, info) {
  const steps = [];
  const step = (text) => steps.push(text);
  try {
    const logKey = await parseVkey(info.log_key);
    const rc = parseReceipt(raw);
    step('The receipt reads as a receipt: log entry ' + rc.index + ', received ' + when(rc.entry.receivedAt) + '.');
    if (rc.entry.election !== info.election_id) {
      throw new CheckError('the receipt is for election ' + rc.entry.election + ', not ' + info.election_id);
    }
    const cp = await verifyCheckpoint(rc.checkpoint, logKey, info.log_origin);
    step("Its checkpoint (" + cp.size + " entries) is signed by this log's key.");
    const leaf = await leafHash(rc.entryBytes);
    if (!(await verifyInclusion(rc.index, cp.size, leaf, rc.proof, cp.root))) {
      throw new CheckError("the receipt's proof does not lead to its checkpoint: the receipt was altered or is not this log's");
    }
    step('Its proof shows the entry is in that checkpoint.');
    if (!info.checkpoint) throw new CheckError('the gateway publishes no checkpoint now');
    const latest = await verifyCheckpoint(info.checkpoint, logKey, info.log_origin);
    if (latest.size < cp.size) {
      throw new CheckError('the log is now smaller (' + latest.size + ') than when this receipt was made (' + cp.size + '): report this to the county');
    }
    const c = await getJson('/v1/log/consistency?from=' + cp.size + '&to=' + latest.size);
    const proof = c.proof.map((h) => fromBase64(h, 'a consistency proof line'));
    if (!(await verifyConsistency(cp.size, latest.size, proof, cp.root, latest.root))) {
      throw new CheckError("the latest log does not extend the receipt's checkpoint: report this to the county");
    }
    step('The latest log (' + latest.size + ' entries) still holds it: the log only grew since.');
    return { ok: true, steps, entry: rc };
  } catch (e) {
    const why = e instanceof CheckError ? e.message : 'the check could not run: ' + e.message;
    return { ok: false, steps, why };
  }
}

function showResult(res) {
  const out = $('result');
  out.replaceChildren();
  const box = el('div', undefined, 'box ' + (res.ok ? 'ok' : 'bad'));
  box.append(el('p', res.ok
    ? 'This receipt is valid: the ballot it names is in the log.'
    : 'This receipt did NOT check: ' + res.why + '.', 'verdict'));
  if (res.ok) {
    box.append(el('p', 'Sealed ballot SHA-256: ' + toHex(res.entry.entry.message), 'mono'));
  }
  const list = el('ol');
  for (const s of res.steps) list.append(el('li', s));
  box.append(list);
  box.append(el('p', "This check ran in your browser. The county's ballot-audit program is the authoritative check."));
  out.append(box);
}

// --- The page -----------------------------------------------------------

async function showLog(info) {
  $('title').textContent = info.title;
  $('subtitle').textContent = info.jurisdiction + ' \u2014 election ' + info.election_id +
    ', open ' + info.opens_at + ' to ' + info.closes_at;
  $('fingerprint').textContent = info.election_fingerprint;
  const log = $('log');
  const row = (k, v, cls) => { log.append(el('dt', k), el('dd', v, cls)); };
  row('Log', info.log_origin);
  const logKey = await parseVkey(info.log_key);
  if (!info.checkpoint) {
    row('Entries', '0 (nothing logged yet)');
  } else {
    const cp = await verifyCheckpoint(info.checkpoint, logKey, info.log_origin);
    row('Entries', cp.size.toString());
    row('Root hash', toHex(cp.root), 'mono');
    $('log-check').textContent = "\u2713 The log's signature on this checkpoint is valid (checked in this browser).";
    $('log-check').className = 'verdict ok';
  }
  const intro = $('witnesses-intro');
  const body = document.querySelector('#witnesses tbody');
  intro.textContent = info.witnesses.length + ' witness(es) named in the signed manifest; ' +
    info.witness_quorum + ' must cosign a checkpoint for it to count.';
  let witnessed = null;
  if (info.witnessed) {
    witnessed = await verifyCheckpoint(info.witnessed, logKey, info.log_origin);
    intro.textContent += ' Latest witnessed checkpoint: ' + witnessed.size + ' entries.';
  } else {
    intro.textContent += ' No checkpoint has been witnessed yet.';
  }
  for (const w of info.witnesses) {
    const tr = el('tr');
    tr.append(el('td', w.name));
    let t = null;
    if (witnessed) t = await verifyCosignature(witnessed.note, await parseVkey(w.key));
    tr.append(el('td', t === null ? 'no' : when(t)));
    tr.append(el('td', t === null ? (witnessed ? 'no valid cosignature' : '\u2014') : '\u2713 valid', t === null ? '' : 'ok'));
    body.append(tr);
  }
}

function showCounts(info) {
  const c = $('counts');
  c.replaceChildren();
  if (!info.status) {
    c.append(el('p', 'The county has not returned a status file yet.'));
    return;
  }
  c.append(el('p', 'From the latest status file the county returned (' + info.status.ballots +
    ' ballots). It is signed by the election key; ballot-audit status-file checks it.'));
  const t = el('table');
  t.append(el('caption', 'Statuses', 'visually-hidden'));
  const head = el('tr');
  head.append(el('th', 'Status'), el('th', 'Ballots'));
  head.childNodes.forEach((th) => th.setAttribute('scope', 'col'));
  t.append(head);
  const add = (k, v) => { const tr = el('tr'); tr.append(el('td', k), el('td', String(v))); t.append(tr); };
  add('valid (counted, or replaced by the same voter\u2019s later ballot)', info.status.valid);
  for (const [reason, n] of info.status.rejected) add('rejected: ' + reason, n);
  c.append(t);
}

async function start() {
  let info;
  try {
    info = await getJson('/v1/observer');
  } catch (e) {
    $('subtitle').textContent = 'The log could not be loaded: ' + e.message;
    return;
  }
  try {
    await showLog(info);
  } catch (e) {
    $('log-check').textContent = '\u2717 ' + (e instanceof CheckError ? e.message : e.message);
    $('log-check').className = 'verdict bad';
  }
  showCounts(info);
  $('check').addEventListener('click', async () => {
    const button = $('check');
    button.disabled = true;
    $('result').textContent = 'Checking\u2026';
    try {
      // The latest checkpoint, fetched again for each check.
      const fresh = await getJson('/v1/observer');
      showResult(await checkReceipt($('receipt').value, fresh));
    } catch (e) {
      showResult({ ok: false, steps: [], why: e.message });
    } finally {
      button.disabled = false;
    }
  });
}

document.addEventListener('DOMContentLoaded', start);
