// The voter's page. It shows and asks; ballot-return (this computer's
// program, the only server this page talks to) fetches and checks the
// election, signs, seals, sends and checks the receipt.
'use strict';

const $ = (id) => document.getElementById(id);
const STEPS = ['election', 'declaration', 'ballot', 'card', 'sending', 'receipt', 'status'];
let election = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function show(step) {
  for (const s of STEPS) $(s).hidden = s !== step;
  const order = ['election', 'declaration', 'ballot', 'card', 'sending', 'receipt'];
  const at = order.indexOf(step);
  document.querySelectorAll('#steps li').forEach((li, i) => {
    li.classList.toggle('done', at >= 0 && i < at);
    if (li.dataset.step === step) li.setAttribute('aria-current', 'step');
    else li.removeAttribute('aria-current');
  });
  const h = $(step + '-h') || $(step).querySelector('h2');
  if (h) h.focus();
}

function fail(text) {
  const e = $('error');
  e.textContent = text;
  e.hidden = false;
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

async function call(method, path, body, headers) {
  const init = { method, headers: headers || {}, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    if (body instanceof ArrayBuffer) {
      init.body = body;
    } else {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new Error('ballot-return is not answering: is its window still open?');
  }
  let v = {};
  try { v = await r.json(); } catch (_) { v = {}; }
  if (!r.ok) throw new Error(v.error || ('ballot-return answered ' + r.status));
  return v;
}

function facts(dl, rows) {
  dl.replaceChildren();
  for (const [k, v] of rows) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(el('dt', k), el('dd', String(v)));
  }
}

function bytesWords(n) {
  if (n < 10000) return n + ' bytes';
  if (n < 10000000) return Math.round(n / 1000) + ' kB';
  return (n / 1e6).toFixed(1) + ' MB';
}

// 1. The election.
async function chooseElection() {
  clearError();
  const button = $('election-go');
  button.disabled = true;
  try {
    election = await call('POST', '/api/election', {
      gateway: $('gateway').value.trim(),
      fingerprint: $('fingerprint').value,
    });
  } catch (e) {
    fail(e.message);
    return;
  } finally {
    button.disabled = false;
  }
  if (!election.open) {
    fail(election.closed_reason);
    return;
  }
  facts($('election-facts'), [
    ['Election', election.title],
    ['For', election.jurisdiction],
    ['Ballots accepted until', election.closes_at],
  ]);
  $('declaration-text').textContent = election.declaration;
  $('accept').checked = false;
  const kinds = election.accepted.map((a) => (a.extension || a.media_type) + ' up to ' + bytesWords(a.max_size));
  $('accepted-types').textContent = 'This election accepts: ' + kinds.join(', ') + '.';
  $('file').accept = election.accepted.map((a) => a.extension).filter((x) => x).join(',');
  show('declaration');
}

// 2. The declaration.
async function acceptDeclaration() {
  clearError();
  if (!$('accept').checked) {
    fail('To send your ballot you must make the declaration: tick "I make this declaration".');
    $('accept').focus();
    return;
  }
  try {
    await call('POST', '/api/declaration', { accept: true });
  } catch (e) {
    fail(e.message);
    return;
  }
  show('ballot');
}

// 3. The ballot file: checked here for size, and by ballot-return for
// type, content and size, before anything is signed.
async function chooseFile(file) {
  clearError();
  $('ballot-go').disabled = true;
  $('file-chosen').textContent = '';
  if (!file) return;
  const ext = (file.name.match(/\.[^.]+$/) || [''])[0].toLowerCase();
  const rule = election.accepted.find((a) => a.extension === ext);
  if (!rule) {
    fail('"' + file.name + '" is not a file this election accepts. ' + $('accepted-types').textContent);
    return;
  }
  if (file.size > rule.max_size) {
    fail('"' + file.name + '" is ' + bytesWords(file.size) + '; this election accepts at most ' + bytesWords(rule.max_size) + '.');
    return;
  }
  $('file-chosen').textContent = 'Checking ' + file.name + '\u2026';
  try {
    const data = await file.arrayBuffer();
    const v = await call('POST', '/api/ballot?name=' + encodeURIComponent(file.name), data,
      { 'Content-Type': 'application/octet-stream' });
    $('file-chosen').textContent = '\u2713 ' + v.name + ' (' + bytesWords(v.size) + ') is ready to be signed and sent.';
    $('ballot-go').disabled = false;
  } catch (e) {
    $('file-chosen').textContent = '';
    fail(e.message);
  }
}

// 4. The card. After a wrong PIN it is read again, to show the tries
// left, keeping the error in view.
async function readCard(keepError) {
  if (keepError !== true) clearError();
  facts($('card-facts'), [['Card', 'reading\u2026']]);
  $('card-tries').textContent = '';
  try {
    const c = await call('GET', '/api/card');
    facts($('card-facts'), [['Card', c.label], ['Holder', c.holder], ['EDIPI', c.edipi]]);
    $('pin-row').hidden = c.kind !== 'card';
    if (c.locked) {
      fail('Your card\u2019s PIN is locked after too many wrong tries. It must be unlocked at an ID card office before it can sign. Nothing was sent.');
      $('send').disabled = true;
      return;
    }
    $('send').disabled = false;
    $('card-tries').textContent = c.tries;
    if (c.kind === 'card' && keepError !== true) $('pin').focus();
  } catch (e) {
    facts($('card-facts'), []);
    $('send').disabled = true;
    fail(e.message);
  }
}

async function send() {
  clearError();
  const button = $('send');
  button.disabled = true;
  const pin = $('pin').value;
  $('pin').value = '';
  try {
    await call('POST', '/api/send', { pin });
  } catch (e) {
    await readCard(true);
    fail(e.message);
    button.disabled = false;
    $('pin').focus();
    return;
  }
  $('retry').hidden = true;
  $('meter').value = 0;
  $('sent-note').textContent = '';
  $('sent-words').textContent = 'Signing and sealing your ballot\u2026';
  show('sending');
  poll();
}

// 5. Progress, as ballot-return reports it.
async function poll() {
  let p;
  try {
    p = await call('GET', '/api/progress');
  } catch (e) {
    fail(e.message);
    return;
  }
  if (p.phase === 'sending' && p.total > 0) {
    const pct = Math.floor((p.sent * 100) / p.total);
    $('meter').value = pct;
    $('meter').textContent = pct + ' %';
    $('sent-words').textContent = 'Sent ' + bytesWords(p.sent) + ' of ' + bytesWords(p.total) + ' (' + pct + ' %).';
  }
  if (p.note) $('sent-note').textContent = p.note;
  if (p.phase === 'failed') {
    $('sent-words').textContent = 'Not sent.';
    fail(p.error);
    $('retry').hidden = false;
    $('retry').focus();
    return;
  }
  if (p.phase === 'done') {
    showReceipt(p.receipt);
    return;
  }
  setTimeout(poll, 250);
}

// 6. The receipt, in plain words.
function showReceipt(r) {
  $('meter').value = 100;
  $('receipt-words').textContent = (r.duplicate
    ? 'Your ballot had reached the county already (an earlier try got through); '
    : 'Your ballot was received; ') +
    'it is entry ' + r.entry + ' in the county\u2019s public log.';
  facts($('receipt-facts'), [
    ['Election', r.election],
    ['Received', r.received_at],
    ['Log entry', r.entry],
    ['Log size', r.log_size],
    ['Sealed ballot (SHA-256)', r.ballot_sha256],
    ['Receipt saved as', r.file],
  ]);
  show('receipt');
}

// 7. Check my ballot.
async function checkStatus() {
  clearError();
  show('status');
  const list = $('status-list');
  list.replaceChildren(el('p', 'Checking with the county\u2019s gateway\u2026'));
  try {
    const v = await call('GET', '/api/status');
    list.replaceChildren();
    if (v.receipts.length === 0) {
      list.append(el('p', 'No ballot was sent from this computer yet (no receipts are kept here).'));
    }
    for (const r of v.receipts) {
      const item = el('div', undefined, 'item');
      item.append(el('h3', 'Entry ' + r.entry + ' of election ' + r.election + (r.received ? ', received ' + r.received : '')));
      const cls = r.status === 'failed' || r.status === 'rejected' ? 'bad' : (r.status === 'valid' ? 'ok' : '');
      item.append(el('p', r.explanation, cls));
      list.append(item);
    }
  } catch (e) {
    list.replaceChildren();
    fail(e.message);
  }
}

function setUpDrop() {
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) chooseFile(f);
  });
  $('file').addEventListener('change', () => chooseFile($('file').files[0]));
}

async function start() {
  setUpDrop();
  $('election-go').addEventListener('click', chooseElection);
  $('check-only').addEventListener('click', checkStatus);
  $('declaration-go').addEventListener('click', acceptDeclaration);
  $('ballot-go').addEventListener('click', () => { show('card'); readCard(); });
  $('card-again').addEventListener('click', () => readCard());
  $('send').addEventListener('click', send);
  $('pin').addEventListener('keydown', (e) => { if (e.key === 'Enter') send(); });
  $('retry').addEventListener('click', () => { clearError(); show('card'); readCard(); });
  $('check-now').addEventListener('click', checkStatus);
  $('status-again').addEventListener('click', checkStatus);
  $('status-back').addEventListener('click', () => { clearError(); show('election'); });
  $('close').addEventListener('click', async () => {
    try { await call('POST', '/api/quit', {}); } catch (_) { /* already closed */ }
    document.body.replaceChildren(el('p', 'ballot-return is closed. You can close this tab.'));
  });
  try {
    const s = await call('GET', '/api/start');
    if (s.gateway) $('gateway').value = s.gateway;
    if (s.fingerprint) $('fingerprint').value = s.fingerprint;
  } catch (e) {
    fail(e.message);
  }
  show('election');
}

document.addEventListener('DOMContentLoaded', start);
