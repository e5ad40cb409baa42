// The dashboard's pages: plain JavaScript, no build step. Every text from the server goes
// into the page as text (never as HTML), so nothing a run recorded can become markup.
'use strict';

// ---------------------------------------------------------------------------------------
// The token: from the URL the CLI printed, kept for this tab.
const params = new URLSearchParams(location.search);
const token = params.get('token') || sessionStorage.getItem('spectacular-token') || '';
if (params.get('token')) sessionStorage.setItem('spectacular-token', token);

async function api(path, options = {}) {
  const headers = { 'x-spectacular-token': token };
  if (options.body) headers['content-type'] = 'application/json';
  const response = await fetch(path, { ...options, headers, cache: 'no-store' });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.status + ' ' + response.statusText);
  return body;
}

function post(path, body) {
  return api(path, { method: 'POST', body: JSON.stringify(body || {}) });
}

// ---------------------------------------------------------------------------------------
// DOM helpers.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function badge(state) {
  return h('span', { class: 'badge ' + state, 'data-state': state }, state);
}

function usd(v) {
  if (v === undefined || v === null) return '-';
  if (v === 0) return '$0';
  return v < 0.01 ? '$' + v.toFixed(4) : '$' + v.toFixed(2);
}

function ms(v) {
  if (v === undefined || v === null) return '-';
  if (v < 1000) return v + 'ms';
  if (v < 60000) return (v / 1000).toFixed(1) + 's';
  return Math.floor(v / 60000) + 'm' + String(Math.floor(v / 1000) % 60).padStart(2, '0') + 's';
}

function when(ts) {
  return ts ? ts.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '-';
}

let toastTimer;
function toast(text, error) {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.className = 'toast' + (error ? ' error' : '');
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, error ? 8000 : 4000);
}

function table(headers, rows, numeric = []) {
  return h('table', {},
    h('thead', {}, h('tr', {}, headers.map((x, i) => h('th', { class: numeric.includes(i) ? 'num' : null }, x)))),
    h('tbody', {}, rows));
}

// ---------------------------------------------------------------------------------------
// Live updates: one event stream at a time, for the page shown.
let source = null;
function live(query, handlers) {
  if (source) source.close();
  const dot = document.getElementById('live');
  source = new EventSource('/api/stream?token=' + encodeURIComponent(token) + (query ? '&' + query : ''));
  source.onopen = () => dot.classList.add('on');
  source.onerror = () => dot.classList.remove('on');
  for (const [name, fn] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  }
}

function debounce(fn, wait) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, wait); };
}

// ---------------------------------------------------------------------------------------
// Routing: #/ (runs), #/run/<id>[/board|/report], #/costs.
const main = document.getElementById('main');
let page = 0; // bumped on every navigation, so that late answers of a former page are dropped

function route() {
  page += 1;
  if (source) { source.close(); source = null; }
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === (parts[0] === 'costs' ? 'costs' : 'runs'));
  }
  if (parts[0] === 'run' && parts[1]) {
    const tab = parts[2] || 'run';
    if (tab === 'board') return boardPage(parts[1], page);
    if (tab === 'report') return reportPage(parts[1], page);
    return runPage(parts[1], page);
  }
  if (parts[0] === 'costs') return costsPage(page);
  return runsPage(page);
}

function failed(error) {
  main.replaceChildren(h('p', { class: 'error' }, error.message));
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  if (!token) {
    main.replaceChildren(h('p', { class: 'error' },
      'No token: open the URL that `spectacular dashboard` printed.'));
    return;
  }
  route();
});

// ---------------------------------------------------------------------------------------
// Runs.
const runFilters = { mission: '', state: '', since: '' };

function runsPage(me) {
  const list = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const missionSel = h('select', { id: 'filter-mission' });
  const stateSel = h('select', { id: 'filter-state' },
    ['', 'running', 'suspended', 'succeeded', 'failed', 'canceled', 'interrupted', 'damaged']
      .map((v) => h('option', { value: v }, v || 'any')));
  const since = h('input', { id: 'filter-since', type: 'date' });
  stateSel.value = runFilters.state;
  since.value = runFilters.since;
  main.replaceChildren(h('h1', {}, 'Runs'),
    h('div', { class: 'filters' },
      h('label', {}, 'Mission', missionSel),
      h('label', {}, 'State', stateSel),
      h('label', {}, 'Started since', since)),
    list);
  let rows = [];
  const draw = () => {
    runFilters.mission = missionSel.value;
    runFilters.state = stateSel.value;
    runFilters.since = since.value;
    const missions = [...new Set(rows.map((r) => r.mission).filter(Boolean))].sort();
    missionSel.replaceChildren(h('option', { value: '' }, 'any'), ...missions.map((m) => h('option', { value: m }, m)));
    missionSel.value = runFilters.mission;
    const shown = rows.filter((r) =>
      (!runFilters.mission || r.mission === runFilters.mission) &&
      (!runFilters.state || r.status === runFilters.state) &&
      (!runFilters.since || (r.started_at || '') >= runFilters.since));
    if (!shown.length) {
      list.replaceChildren(h('p', { class: 'muted' }, rows.length ? 'No run matches.' : 'No runs yet in this store.'));
      return;
    }
    list.replaceChildren(table(['Run', 'Mission', 'State', 'Started', 'Ended', 'Events', 'Cost'],
      shown.map((r) => h('tr', { 'data-run': r.run_id },
        h('td', { class: 'mono' }, h('a', { href: '#/run/' + r.run_id }, r.run_id)),
        h('td', {}, r.mission || '?'),
        h('td', {}, badge(r.status), r.error ? h('div', { class: 'error' }, r.error) : null),
        h('td', {}, when(r.started_at)),
        h('td', {}, when(r.ended_at)),
        h('td', { class: 'num' }, r.events ?? ''),
        h('td', { class: 'num' }, usd(r.cost_usd)))), [5, 6]));
  };
  for (const el of [missionSel, stateSel, since]) el.addEventListener('change', draw);
  const load = () => api('/api/runs').then((r) => { if (me === page) { rows = r; draw(); } }, failed);
  load();
  live('', { runs: debounce(load, 150) });
}

// ---------------------------------------------------------------------------------------
// One run.
function tabs(id, active) {
  return h('div', { class: 'tabs' },
    [['run', 'Run', ''], ['board', 'Plan & board', '/board'], ['report', 'Report', '/report']].map(([key, label, suffix]) =>
      h('a', { href: '#/run/' + id + suffix, class: key === active ? 'active' : null }, label)));
}

function runPage(id, me) {
  const logs = new Map(); // "<instance>/<attempt>/<stream>" → {text, length, el}
  const state = { data: null, waitingKey: null };
  const head = h('div', { class: 'runhead' });
  const graph = h('div', { class: 'graph', id: 'graph' });
  const waiting = h('div', { id: 'waiting' });
  const phases = h('div', { id: 'phases' });
  const attempts = h('div', { id: 'attempts' });
  const side = h('div', {});
  const timeline = h('div', { class: 'timeline', id: 'timeline' });
  main.replaceChildren(head, tabs(id, 'run'), graph, waiting,
    h('div', { class: 'grid2' },
      h('div', {}, h('h2', {}, 'Phases'), phases, h('h2', {}, 'Attempts'), attempts),
      h('div', {}, side, h('h2', {}, 'Timeline'), timeline)));

  const load = () => api('/api/runs/' + encodeURIComponent(id)).then((data) => {
    if (me !== page) return;
    state.data = data;
    drawHead(head, id, data);
    graph.replaceChildren(drawGraph(data.graph, data.status.phases));
    drawWaiting(waiting, id, data, state, load);
    drawPhases(phases, data);
    drawAttempts(attempts, id, data, logs);
    drawSide(side, data);
    drawTimeline(timeline, data.timeline);
  }, failed);
  load();
  live('run=' + encodeURIComponent(id), {
    events: debounce(load, 100),
    output: (msg) => {
      for (const file of msg.files) {
        const [instance, attempt, name] = file.split('/');
        const key = instance + '/' + attempt + '/' + name.replace('.log', '');
        if (logs.has(key) && logs.get(key).open) fetchLog(id, key, logs);
      }
    },
  });
}

function drawHead(head, id, data) {
  const st = data.status;
  const total = (data.cost && data.cost.cost_usd) || 0;
  const cancellable = !data.read_only && !['succeeded', 'failed', 'canceled'].includes(st.status);
  head.replaceChildren(...[
    h('h1', {}, st.mission, ' ', h('span', { class: 'mono muted' }, st.run_id)),
    h('span', { id: 'run-status', 'data-status': st.status }, badge(st.status)),
    h('span', { class: 'muted' }, st.engine_running ? 'an engine is running it' : 'no engine running'),
    h('span', {}, 'cost ', h('strong', {}, usd(total))),
    h('span', { class: 'muted' }, 'started ', when(st.started_at)),
    h('span', { class: 'spacer' }),
    cancellable ? h('button', {
      class: 'danger', 'data-action': 'cancel', onclick: (e) => {
        if (!confirm('Cancel run ' + st.run_id + '? `spectacular resume` continues it later.')) return;
        act(e.target, '/api/runs/' + encodeURIComponent(id) + '/cancel', {});
      },
    }, 'Cancel run') : null].filter(Boolean));
}

function act(button, path, body) {
  button.disabled = true;
  return post(path, body).then((r) => {
    toast((r.message || 'done') + (r.resumed ? '\nthe run continues' : ''));
  }, (e) => { toast(e.message, true); button.disabled = false; });
}

// The phase graph: layers left to right, edges as curves, each node coloured by its state.
function drawGraph(graph, phases) {
  const W = 168, H = 44, GX = 56, GY = 18, PAD = 14;
  const byId = new Map(phases.map((p) => [p.phase, p]));
  const rows = Math.max(1, ...graph.nodes.map((n) => n.row + 1));
  const width = PAD * 2 + graph.layers * W + Math.max(0, graph.layers - 1) * GX;
  const height = PAD * 2 + rows * H + (rows - 1) * GY;
  const at = new Map(graph.nodes.map((n) => [n.id, { x: PAD + n.layer * (W + GX), y: PAD + n.row * (H + GY) }]));
  const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'phase graph' },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 8 8', refX: 8, refY: 4, markerWidth: 7, markerHeight: 7, orient: 'auto' },
      s('path', { class: 'arrow', d: 'M0,0 L8,4 L0,8 z' }))));
  for (const e of graph.edges) {
    const a = at.get(e.from), b = at.get(e.to);
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
    svg.append(s('path', { class: 'edge', 'marker-end': 'url(#arrow)', d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` }));
  }
  for (const n of graph.nodes) {
    const p = byId.get(n.id) || { state: 'pending' };
    const { x, y } = at.get(n.id);
    let sub = p.state;
    if (p.children) sub += ` · ${p.children.succeeded}/${p.children.total} items`;
    else if (p.attempts > 1) sub += ` · ${p.attempts} attempts`;
    if (n.gate) sub = 'gate · ' + sub;
    svg.append(s('g', { class: `node ${p.state}${n.gate ? ' gate' : ''}`, 'data-phase': n.id, 'data-state': p.state },
      s('title', {}, `${n.id}: ${p.state}${p.note ? ' — ' + p.note : ''}`),
      s('rect', { x, y, width: W, height: H, rx: 7 }),
      s('text', { x: x + 10, y: y + 18 }, n.id.length > 22 ? n.id.slice(0, 21) + '…' : n.id),
      s('text', { x: x + 10, y: y + 34, class: 'sub' }, sub)));
  }
  return svg;
}

function drawWaiting(el, id, data, state, reload) {
  // Redrawn only when what waits changes, so that text being typed is kept.
  const key = JSON.stringify([data.waiting, data.read_only]);
  if (key === state.waitingKey) return;
  state.waitingKey = key;
  el.replaceChildren(...data.waiting.map((w) => {
    const base = '/api/runs/' + encodeURIComponent(id);
    const comment = h('input', { type: 'text', placeholder: 'comment (optional)', 'data-comment': w.phase });
    const questions = w.questions.map((q) => {
      const input = h('input', { type: 'text', maxlength: 2000, placeholder: 'your answer', 'data-question': q.n });
      const form = h('form', {
        onsubmit: (e) => {
          e.preventDefault();
          if (!input.value.trim()) return;
          act(form.querySelector('button'), base + '/answer', { phase: w.phase, question: q.n, answer: input.value })
            .then(reload);
        },
      }, input, h('button', { type: 'submit', 'data-action': 'answer' }, 'Answer'));
      return h('div', { class: 'question', 'data-question': q.n },
        h('div', {}, h('strong', {}, q.n + '. '), q.text, ' ', q.answered ? badge('answered') : null),
        q.answered ? h('div', { class: 'muted' }, '→ ', q.answer) : (data.read_only ? null : form));
    });
    const plan = w.plan ? h('p', { class: 'muted' },
      `plan: ${w.plan.work_packages ? w.plan.work_packages.length : '?'} work packages`) : null;
    return h('div', { class: 'card waiting-card', 'data-waiting': w.phase },
      h('h3', {}, 'Waiting: ', w.phase),
      h('p', {}, w.reason),
      plan,
      questions,
      data.read_only ? h('p', { class: 'muted' }, 'read-only dashboard') : h('div', { class: 'actions' },
        comment,
        h('button', {
          class: 'primary', 'data-action': 'approve', 'data-phase': w.phase,
          onclick: (e) => act(e.target, base + '/approve', { phase: w.phase, approve: true, comment: comment.value }).then(reload),
        }, w.questions.length ? 'Approve (go on)' : 'Approve'),
        h('button', {
          class: 'danger', 'data-action': 'reject', 'data-phase': w.phase,
          onclick: (e) => act(e.target, base + '/approve', { phase: w.phase, approve: false, comment: comment.value }).then(reload),
        }, 'Reject')));
  }));
}

function drawPhases(el, data) {
  const top = data.status.phases.filter((p) => !p.parent);
  el.replaceChildren(table(['Phase', 'State', 'Attempts', 'Duration', 'Cost', 'Note'],
    top.map((p) => h('tr', { 'data-phase': p.phase, 'data-state': p.state },
      h('td', {}, p.phase),
      h('td', {}, badge(p.state)),
      h('td', { class: 'num' }, p.children ? p.children.attempts : p.attempts),
      h('td', { class: 'num' }, ms(p.duration_ms)),
      h('td', { class: 'num' }, usd(p.cost_usd)),
      h('td', {}, p.note || p.last_failure || ''))), [2, 3, 4]));
}

function drawAttempts(el, id, data, logs) {
  const rows = data.attempts.slice().reverse().slice(0, 200);
  el.replaceChildren(...rows.map((a) => {
    const streams = ['stdout', 'stderr'].filter((x) => a[x]);
    const details = h('details', { class: 'attempt', 'data-attempt': a.phase + '/' + a.attempt });
    const bodies = streams.map((name) => {
      const key = a.phase + '/' + a.attempt + '/' + name;
      const pre = h('pre', { 'data-log': key });
      const entry = logs.get(key) || { text: '', length: 0, open: false };
      entry.el = pre;
      pre.textContent = entry.text;
      logs.set(key, entry);
      return h('div', {}, h('div', { class: 'muted' }, name), pre);
    });
    if (streams.some((name) => logs.get(a.phase + '/' + a.attempt + '/' + name).open)) details.open = true;
    details.addEventListener('toggle', () => {
      for (const name of streams) {
        const key = a.phase + '/' + a.attempt + '/' + name;
        logs.get(key).open = details.open;
        if (details.open) fetchLog(id, key, logs);
      }
    });
    append(details, [h('summary', {}, a.phase, ' #', a.attempt, ' ', badge(a.state), ' ',
      h('span', { class: 'muted' }, ms(a.duration_ms), a.failure_kind ? ' · ' + a.failure_kind : '',
        a.exit_code !== null && a.exit_code !== undefined ? ' · exit ' + a.exit_code : '')),
    streams.length ? bodies : h('p', { class: 'muted' }, 'no output recorded')]);
    return details;
  }));
}

function fetchLog(id, key, logs) {
  const entry = logs.get(key);
  const [instance, attempt, name] = key.split('/');
  const q = new URLSearchParams({ instance, attempt, stream: name, offset: String(entry.length) });
  api('/api/runs/' + encodeURIComponent(id) + '/log?' + q).then((r) => {
    entry.text = r.from === entry.length ? entry.text + r.text : r.text;
    entry.length = r.length;
    if (entry.el) { entry.el.textContent = entry.text; entry.el.scrollTop = entry.el.scrollHeight; }
  }, (e) => toast(e.message, true));
}

function drawSide(el, data) {
  const parts = [];
  const b = data.budget || {};
  parts.push(h('h2', {}, 'Cost by phase'));
  parts.push(budgetGauge(data.cost.cost_usd, b.max_usd, b.soft_usd));
  if (b.alert) parts.push(h('p', { class: 'error' }, 'budget ', b.alert.level, ': ', b.alert.message));
  parts.push(data.cost.groups.length ? barChart(data.cost.groups, {}) : h('p', { class: 'muted' }, 'No agent calls yet.'));
  if (data.outputs.length) {
    parts.push(h('h2', {}, 'Outputs'));
    parts.push(table(['Phase', 'Output', 'Value'], data.outputs.map((o) => h('tr', {},
      h('td', {}, o.phase, ' #', o.attempt), h('td', { class: 'mono' }, o.name, h('div', { class: 'muted' }, o.path)),
      h('td', {}, o.value ? h('pre', {}, o.value) : '')))));
  }
  parts.push(h('h2', {}, 'Policy decisions'));
  parts.push(data.decisions.length ? table(['#', 'Phase', 'Pack', 'Hook', 'Decision'], data.decisions.map((d) => h('tr', {},
    h('td', { class: 'num' }, d.seq), h('td', {}, d.phase), h('td', {}, d.pack, ' ', h('span', { class: 'muted' }, d.version)),
    h('td', {}, d.hook), h('td', {}, d.summary)))) : h('p', { class: 'muted' }, 'No policy decisions.'));
  el.replaceChildren(...parts);
}

function drawTimeline(el, events) {
  const atBottom = el.scrollTop + el.clientHeight >= el.scrollHeight - 4;
  el.replaceChildren(table(['#', 'Time', 'Event', 'Phase', 'Detail'], events.map((e) => h('tr', { 'data-seq': e.seq },
    h('td', { class: 'num' }, e.seq), h('td', { class: 'mono' }, (e.ts || '').slice(11, 23)),
    h('td', {}, e.type), h('td', {}, e.phase || ''), h('td', {}, e.detail))), [0]));
  if (atBottom) el.scrollTop = el.scrollHeight;
}

// ---------------------------------------------------------------------------------------
// Charts (inline SVG).
function barChart(groups, { cap, soft, money = true }) {
  const W = 560, label = 170, row = 22, pad = 24;
  const max = Math.max(1e-9, ...groups.map((g) => g.cost_usd), cap || 0, soft || 0) * 1.08;
  const height = pad + groups.length * row + 8;
  const x = (v) => label + (W - label - 70) * (v / max);
  const svg = s('svg', { width: W, height, viewBox: `0 0 ${W} ${height}`, role: 'img' });
  groups.forEach((g, i) => {
    const y = pad + i * row;
    svg.append(s('text', { x: 4, y: y + 14 }, g.key.length > 26 ? g.key.slice(0, 25) + '…' : g.key));
    svg.append(s('rect', { class: 'bar', x: label, y: y + 3, width: Math.max(1, x(g.cost_usd) - label), height: row - 7, rx: 2 },
      s('title', {}, `${g.key}: ${usd(g.cost_usd)} over ${g.calls} calls`)));
    svg.append(s('text', { x: x(g.cost_usd) + 4, y: y + 14 }, money ? usd(g.cost_usd) : g.cost_usd));
  });
  limitLines(svg, x, cap, soft, 14, height);
  return h('div', { class: 'chart' }, svg);
}

function limitLines(svg, x, cap, soft, top, bottom) {
  if (soft) {
    svg.append(s('line', { class: 'soft', x1: x(soft), x2: x(soft), y1: top, y2: bottom }));
    svg.append(s('text', { class: 'soft-label', x: x(soft) + 3, y: top - 2 }, 'soft ' + usd(soft)));
  }
  if (cap) {
    svg.append(s('line', { class: 'cap', x1: x(cap), x2: x(cap), y1: top, y2: bottom }));
    svg.append(s('text', { class: 'cap-label', x: x(cap) + 3, y: top + 10 }, 'cap ' + usd(cap)));
  }
}

// The run's spending against its budget: one bar, the soft threshold and the cap drawn.
function budgetGauge(spent, cap, soft) {
  const W = 560, label = 170;
  const max = Math.max(1e-9, spent, cap || 0, soft || 0) * 1.08;
  const x = (v) => label + (W - label - 70) * (v / max);
  const svg = s('svg', { width: W, height: 54, viewBox: `0 0 ${W} 54`, role: 'img', 'aria-label': 'budget' },
    s('text', { x: 4, y: 38 }, cap || soft ? 'spent / budget' : 'spent (no budget)'),
    s('rect', { class: 'bar', x: label, y: 26, width: Math.max(1, x(spent) - label), height: 16, rx: 2 }),
    s('text', { x: x(spent) + 4, y: 38 }, usd(spent)));
  limitLines(svg, x, cap, soft, 14, 50);
  return h('div', { class: 'chart', 'data-chart': 'budget' }, svg);
}

// Spending per day as columns, with the day budget drawn across.
function dayChart(groups, cap) {
  const W = 760, H = 220, left = 54, bottom = 36, top = 14;
  const days = groups.slice().sort((a, b) => a.key.localeCompare(b.key)).slice(-60);
  const max = Math.max(1e-9, ...days.map((g) => g.cost_usd), cap || 0) * 1.1;
  const y = (v) => H - bottom - (H - bottom - top) * (v / max);
  const step = (W - left - 10) / Math.max(1, days.length);
  const svg = s('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'cost by day' },
    s('line', { x1: left, x2: W - 10, y1: H - bottom, y2: H - bottom, stroke: '#a1a1aa' }),
    s('text', { x: 4, y: top + 8 }, usd(max)), s('text', { x: 4, y: H - bottom }, '$0'));
  days.forEach((g, i) => {
    const bx = left + i * step + Math.max(0, (step - Math.min(48, step * 0.7)) / 2);
    svg.append(s('rect', { class: 'bar', x: bx, y: y(g.cost_usd), width: Math.min(48, Math.max(2, step * 0.7)), height: H - bottom - y(g.cost_usd) },
      s('title', {}, `${g.key}: ${usd(g.cost_usd)} over ${g.calls} calls`)));
    if (days.length <= 14 || i % Math.ceil(days.length / 14) === 0) {
      svg.append(s('text', { x: bx, y: H - bottom + 14 }, g.key.slice(5)));
    }
  });
  if (cap) {
    svg.append(s('line', { class: 'cap', x1: left, x2: W - 10, y1: y(cap), y2: y(cap) }));
    svg.append(s('text', { class: 'cap-label', x: W - 130, y: y(cap) - 4 }, 'day budget ' + usd(cap)));
  }
  return h('div', { class: 'chart', 'data-chart': 'day' }, svg);
}

// ---------------------------------------------------------------------------------------
// Plan and board.
function boardPage(id, me) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(h('h1', {}, 'Plan & board ', h('span', { class: 'mono muted' }, id)), tabs(id, 'board'), body);
  const load = () => api('/api/runs/' + encodeURIComponent(id) + '/board').then((data) => {
    if (me === page) drawBoard(body, data);
  }, failed);
  load();
  live('run=' + encodeURIComponent(id), { events: debounce(load, 150) });
}

function drawBoard(el, data) {
  const cards = data.board.work_packages;
  const detail = new Map(data.work_packages.map((w) => [w.instance, w]));
  const errorsOf = (w) => data.checks.failures.filter((f) => f.phase === w.instance);
  const parts = [h('p', {}, badge(data.board.status), ' ', cards.length, ' work packages')];
  if (!cards.length) parts.push(h('p', { class: 'muted' }, 'No work packages: this run has no checked plan yet.'));
  parts.push(h('div', { class: 'board' }, data.columns.map((col) =>
    h('div', { class: 'column', 'data-column': col },
      h('h3', {}, col, ' ', h('span', { class: 'muted' }, cards.filter((c) => c.column === col).length)),
      cards.filter((c) => c.column === col).map((c) => {
        const w = detail.get(c.instance) || {};
        const git = w.git;
        return h('div', { class: 'wp', 'data-work': c.work, 'data-state': c.state },
          h('div', {}, h('span', { class: 'id' }, c.work), ' ', badge(c.state)),
          c.title ? h('div', {}, c.title) : null,
          h('div', { class: 'meta' },
            c.lane !== null && c.lane !== undefined ? 'lane ' + c.lane + ' · ' : '',
            (c.depends_on || []).length ? 'after ' + c.depends_on.join(', ') + ' · ' : '',
            c.attempts + ' attempt(s)', c.loops ? ' · ' + c.loops + ' rework loop(s)' : '',
            c.cost_usd ? ' · ' + usd(c.cost_usd) : ''),
          c.branch ? h('div', { class: 'meta mono' }, c.branch) : null,
          git ? h('div', { class: 'meta' }, `+${git.insertions} −${git.deletions} in ${(git.files || []).length} file(s), ${(git.commits || []).length} commit(s)`,
            (git.outside_owned || []).length ? h('div', { class: 'error' }, 'outside owned files: ' + git.outside_owned.join(', ')) : null) : null,
          w.merge ? h('div', { class: 'meta' }, 'merge: ', w.merge) : null,
          c.note ? h('div', { class: 'meta' }, c.note) : null,
          errorsOf(w).length ? h('ul', {}, errorsOf(w).map((f) => h('li', { class: 'error' }, `#${f.attempt} ${f.kind}: ${f.message}`))) : null,
          (w.verdicts || []).length ? h('ul', {}, w.verdicts.map((v) => h('li', {}, badge(v.verdict), ' ', v.criterion, ': ', v.reason))) : null);
      })))));
  if (data.plan) {
    const p = data.plan;
    parts.push(h('h2', {}, 'Plan ', h('span', { class: 'muted' }, `(${p.covered}/${p.to_cover} requirements and criteria covered)`)));
    const list = (x) => (x || []).join(', ');
    parts.push(table(['Package', 'Title', 'Depends on', 'Owned files', 'Covers', 'Estimate'], p.work_packages.map((w) => h('tr', {},
      h('td', { class: 'mono' }, w.id), h('td', {}, w.title), h('td', {}, list(w.depends_on)),
      h('td', { class: 'mono' }, list(w.owned_files)), h('td', {}, list(w.requirement_refs)), h('td', {}, w.estimate || '')))));
    if ((p.lanes || []).length) parts.push(h('p', {}, 'Lanes (never run together): ', p.lanes.map((l) => '[' + l.join(', ') + ']').join(' ')));
  }
  if (data.checks.errors.length) {
    parts.push(h('h2', {}, 'Check errors'));
    parts.push(table(['Phase', 'Tool', 'Where', 'Message'], data.checks.errors.slice(0, 300).map((e) => h('tr', {},
      h('td', {}, e.phase), h('td', {}, e.tool), h('td', { class: 'mono' }, [e.file, e.line, e.column].filter((x) => x !== null && x !== undefined).join(':')),
      h('td', {}, e.severity, ': ', e.message)))));
  }
  if (data.merges.length) {
    parts.push(h('h2', {}, 'Merges'));
    parts.push(table(['Work', 'Branch', 'Into', 'Outcome'], data.merges.map((m) => h('tr', {},
      h('td', {}, m.work), h('td', { class: 'mono' }, m.branch), h('td', { class: 'mono' }, m.into),
      h('td', {}, m.outcome, (m.conflicts || []).length ? ': ' + m.conflicts.join(', ') : '')))));
  }
  if (data.loops.length) {
    parts.push(h('h2', {}, 'Rework loops'));
    parts.push(table(['At', 'From', 'Back to', 'Iteration', 'Reset'], data.loops.map((l) => h('tr', {},
      h('td', {}, when(l.at)), h('td', {}, l.from), h('td', {}, l.goto), h('td', { class: 'num' }, l.iteration), h('td', {}, (l.reset || []).join(', '))))));
  }
  el.replaceChildren(...parts);
}

// ---------------------------------------------------------------------------------------
// The report, rendered from its Markdown.
function reportPage(id, me) {
  const body = h('div', { class: 'report' }, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(h('h1', {}, 'Report ', h('span', { class: 'mono muted' }, id)), tabs(id, 'report'), body);
  const load = () => api('/api/runs/' + encodeURIComponent(id) + '/report').then((data) => {
    if (me === page) body.replaceChildren(...markdown(data.markdown));
  }, failed);
  load();
  live('run=' + encodeURIComponent(id), { events: debounce(load, 300) });
}

// A small Markdown reader for the report: headings, tables, lists, code blocks, paragraphs,
// `code` and **bold**. Builds nodes, never HTML.
function markdown(text) {
  const out = [];
  // report.md writes every `<` as `&lt;` (no tag can reach a Markdown renderer); this reader
  // builds text nodes only, so it shows them as written.
  const lines = text.replace(/&lt;/g, '<').split('\n');
  let i = 0;
  const inline = (t) => {
    const nodes = [];
    const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
    let last = 0, m;
    while ((m = re.exec(t))) {
      nodes.push(t.slice(last, m.index));
      nodes.push(m[1] !== undefined ? h('code', {}, m[1]) : h('strong', {}, m[2]));
      last = re.lastIndex;
    }
    nodes.push(t.slice(last));
    return nodes;
  };
  const cells = (l) => l.trim().replace(/^\||\|$/g, '').split('|').map((c) => c.trim());
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith('```')) {
      const code = [];
      for (i += 1; i < lines.length && !lines[i].startsWith('```'); i += 1) code.push(lines[i]);
      i += 1;
      out.push(h('pre', {}, code.join('\n')));
    } else if (/^#{1,6} /.test(line)) {
      const level = Math.min(4, line.indexOf(' ') + 1);
      out.push(h('h' + level, {}, inline(line.replace(/^#+ /, ''))));
      i += 1;
    } else if (line.trim().startsWith('|') && i + 1 < lines.length && /^\s*\|?\s*:?-+/.test(lines[i + 1])) {
      const head = cells(line);
      const rows = [];
      for (i += 2; i < lines.length && lines[i].trim().startsWith('|'); i += 1) rows.push(cells(lines[i]));
      out.push(table(head, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, inline(c)))))));
    } else if (/^\s*([-*]|\d+\.) /.test(line)) {
      const ordered = /^\s*\d+\. /.test(line);
      const items = [];
      for (; i < lines.length && /^\s*([-*]|\d+\.) /.test(lines[i]); i += 1) {
        items.push(h('li', {}, inline(lines[i].replace(/^\s*([-*]|\d+\.) /, ''))));
      }
      out.push(h(ordered ? 'ol' : 'ul', {}, items));
    } else if (!line.trim()) {
      i += 1;
    } else {
      const para = [];
      for (; i < lines.length && lines[i].trim() && !/^(#|```|\s*\||\s*[-*] |\s*\d+\. )/.test(lines[i]); i += 1) para.push(lines[i]);
      if (!para.length) { para.push(line); i += 1; }
      out.push(h('p', {}, inline(para.join(' '))));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Costs.
function costsPage(me) {
  const since = h('input', { type: 'text', placeholder: '7d, 2026-11-01', id: 'cost-since', size: 14 });
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  main.replaceChildren(h('h1', {}, 'Costs'),
    h('div', { class: 'filters' }, h('label', {}, 'Since', since)), body);
  const load = () => api('/api/costs' + (since.value ? '?since=' + encodeURIComponent(since.value) : '')).then((data) => {
    if (me !== page) return;
    const r = data.reports;
    const b = data.budgets || {};
    const parts = [h('p', {}, h('strong', {}, usd(r.day.cost_usd)), ` over ${r.day.calls} agent calls`,
      r.day.estimated_calls ? ` (${usd(r.day.estimated_usd)} of it estimated, ${r.day.estimated_calls} calls)` : '',
      b.month_usd ? ` · month budget ${usd(b.month_usd)}` : '')];
    parts.push(h('h2', {}, 'By day'));
    parts.push(r.day.groups.length ? dayChart(r.day.groups, b.day_usd) : h('p', { class: 'muted' }, 'No agent calls.'));
    for (const key of ['agent', 'model', 'mission', 'phase']) {
      parts.push(h('h2', {}, 'By ' + key));
      parts.push(r[key].groups.length ? barChart(r[key].groups, {}) : h('p', { class: 'muted' }, 'No agent calls.'));
    }
    body.replaceChildren(...parts);
  }, (e) => body.replaceChildren(h('p', { class: 'error' }, e.message)));
  since.addEventListener('change', load);
  load();
  live('', { runs: debounce(load, 500) });
}
