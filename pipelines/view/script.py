"""The index page's script, inlined into the page (a site opens from the file system: nothing is fetched).

It reads the same filter language as `--filter` (filters.py; keep the two in step, the browser test checks
that they hide the same rows), keeps the filter in the address (index.html#status=answered,turns>=4, so a
filtered view can be bookmarked or sent), offers a drop-down per field and sorts by a click on a heading.
"""

INDEX_SCRIPT = r"""
(() => {
  const fields = JSON.parse(document.getElementById('fields').textContent);
  const byName = Object.fromEntries(fields.map(f => [f.name, f]));
  const table = document.getElementById('entries');
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const values = new Map(rows.map(r => [r, JSON.parse(r.dataset.v)]));
  const box = document.getElementById('filter');
  const error = document.getElementById('filter-error');
  const shown = document.getElementById('shown');
  const ORDER = ['>=', '<=', '>', '<'];

  function parse(expr) {
    const clauses = [];
    for (const part of expr.split(',')) {
      if (!part.trim()) continue;
      const m = /^\s*([a-z_]+)\s*(!=|>=|<=|=|>|<)\s*(.*?)\s*$/.exec(part);
      if (!m) throw new Error(`${part.trim()}: write FIELD=VALUE (or !=, >=, <=, >, <)`);
      const [, name, op, raw] = m;
      const field = byName[name];
      const names = Object.keys(byName).join(', ');
      if (!field) throw new Error(`${part.trim()}: no field ${name}; use one of ${names}`);
      const vals = raw.split('|').map(v => v.trim());
      if (vals.some(v => !v)) throw new Error(`${part.trim()}: give a value after ${op}`);
      if (ORDER.includes(op) && (!field.numeric || vals.length > 1 || isNaN(Number(vals[0]))))
        throw new Error(`${part.trim()}: ${op} takes one number, on a numeric field`);
      clauses.push({name, op, vals});
    }
    return clauses;
  }

  function equal(value, wanted) {
    if (typeof value === 'number') return !isNaN(Number(wanted)) && value === Number(wanted);
    return String(value ?? '') === wanted;
  }

  function holds(c, value) {
    if (ORDER.includes(c.op)) {
      if (typeof value !== 'number') return false;
      const n = Number(c.vals[0]);
      return c.op === '>=' ? value >= n : c.op === '<=' ? value <= n : c.op === '>' ? value > n : value < n;
    }
    const items = Array.isArray(value) ? value : [value];
    const listed = items.some(item => c.vals.some(w => equal(item, w)));
    return c.op === '=' ? listed : !listed;
  }

  function syncControls(clauses) {
    document.querySelectorAll('[data-field]').forEach(control => {
      const c = clauses.find(c => c.name === control.dataset.field && c.op === (control.dataset.op || '='));
      control.value = c && c.vals.length === 1 ? c.vals[0] : '';
    });
  }

  function apply(expr, fromBox) {
    let clauses;
    try { clauses = parse(expr); } catch (e) { error.textContent = e.message; return; }
    error.textContent = '';
    let n = 0;
    for (const row of rows) {
      const ok = clauses.every(c => holds(c, values.get(row)[c.name]));
      row.hidden = !ok;
      if (ok) n++;
    }
    shown.textContent = n;
    if (!fromBox) box.value = expr;
    syncControls(clauses);
    if (decodeURIComponent(location.hash.slice(1)) !== expr) location.replace('#' + encodeURIComponent(expr));
  }

  function fromControls(control) {
    const op = control.dataset.op || '=';
    let clauses = [];
    try { clauses = parse(box.value); } catch (e) { clauses = []; }
    const kept = clauses.filter(c => !(c.name === control.dataset.field && c.op === op));
    if (control.value !== '') kept.push({name: control.dataset.field, op, vals: [control.value]});
    apply(kept.map(c => c.name + c.op + c.vals.join('|')).join(','), false);
  }

  document.querySelectorAll('[data-field]').forEach(c => c.addEventListener('change', () => fromControls(c)));
  box.addEventListener('input', () => apply(box.value, true));
  window.addEventListener('hashchange', () => apply(decodeURIComponent(location.hash.slice(1)), false));

  table.tHead.querySelectorAll('th[data-sort]').forEach(th => th.addEventListener('click', () => {
    const name = th.dataset.sort;
    const dir = th.dataset.dir === 'asc' ? -1 : 1;
    th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    const key = r => values.get(r)[name];
    rows.slice().sort((a, b) => {
      const x = key(a), y = key(b);
      if (typeof x === 'number' && typeof y === 'number') return dir * (x - y);
      return dir * String(x ?? '').localeCompare(String(y ?? ''));
    }).forEach(r => body.appendChild(r));
  }));

  apply(decodeURIComponent(location.hash.slice(1)), false);
})();
"""
