/* tallydesk — app.js: small progressive enhancement, no framework.
 * Every page works without it. Adds:
 *   /      focus the global search box
 *   ?      show / hide the keyboard shortcuts dialog
 *   j / k  move the highlighted row in tables with class "list"
 *   Enter  open the highlighted row's first link
 *   Esc    close the user menu
 * and a Copy button beside read-only links and keys (input[data-copy]).
 */
(function () {
  'use strict';

  var doc = document;
  var current = -1; /* index of the highlighted row in listRows() */
  var dialog = null;

  /* True when a key press belongs to a field the user is typing in. */
  function isTyping(el) {
    if (!el || el === doc.body) return false;
    if (el.isContentEditable) return true;
    var tag = el.tagName;
    if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
    if (tag === 'INPUT') {
      var t = (el.type || 'text').toLowerCase();
      return ['checkbox', 'radio', 'button', 'submit', 'reset', 'range', 'color', 'file', 'image'].indexOf(t) < 0;
    }
    return false;
  }

  /* ---- search ---------------------------------------------------------- */
  function focusSearch() {
    var box = doc.getElementById('global-search') || doc.querySelector('form[role="search"] input[name="q"]');
    if (!box) return false;
    box.focus();
    if (box.select) box.select();
    return true;
  }

  /* ---- shortcuts dialog ------------------------------------------------ */
  var SHORTCUTS = [
    ['/', 'Search tickets, clients…'],
    ['j', 'Next row in a list'],
    ['k', 'Previous row in a list'],
    ['Enter', 'Open the highlighted row'],
    ['?', 'Show or hide this help'],
    ['Esc', 'Close a dialog or menu']
  ];

  function buildDialog() {
    var d = doc.createElement('dialog');
    d.className = 'shortcuts';
    d.id = 'shortcuts';
    d.setAttribute('aria-labelledby', 'shortcuts-title');

    var h = doc.createElement('h2');
    h.id = 'shortcuts-title';
    h.textContent = 'Keyboard shortcuts';
    d.appendChild(h);

    var dl = doc.createElement('dl');
    SHORTCUTS.forEach(function (s) {
      var dt = doc.createElement('dt');
      var kbd = doc.createElement('kbd');
      kbd.textContent = s[0];
      dt.appendChild(kbd);
      var dd = doc.createElement('dd');
      dd.textContent = s[1];
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
    d.appendChild(dl);

    var form = doc.createElement('form');
    form.method = 'dialog';
    var btn = doc.createElement('button');
    btn.type = 'submit';
    btn.className = 'btn btn-secondary btn-sm';
    btn.textContent = 'Close';
    form.appendChild(btn);
    d.appendChild(form);

    /* Browsers without <dialog>: close by hand. */
    form.addEventListener('submit', function (e) {
      if (typeof d.close !== 'function') {
        e.preventDefault();
        d.removeAttribute('open');
      }
    });
    doc.body.appendChild(d);
    return d;
  }

  function toggleShortcuts() {
    if (!dialog) dialog = buildDialog();
    var open = dialog.hasAttribute('open');
    if (typeof dialog.showModal === 'function') {
      if (open) dialog.close(); else dialog.showModal();
    } else if (open) {
      dialog.removeAttribute('open');
    } else {
      dialog.setAttribute('open', '');
    }
  }

  /* ---- list navigation ------------------------------------------------- */
  function listRows() {
    var rows = doc.querySelectorAll('table.list > tbody > tr');
    var out = [];
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].querySelector('a[href]')) out.push(rows[i]);
    }
    return out;
  }

  function highlight(rows, i) {
    if (!rows.length) return;
    i = Math.max(0, Math.min(rows.length - 1, i));
    var old = doc.querySelector('table.list tr.is-current');
    if (old) old.classList.remove('is-current');
    var row = rows[i];
    row.classList.add('is-current');
    current = i;
    var link = row.querySelector('a[href]');
    if (link) {
      try { link.focus({ preventScroll: true }); } catch (e) { link.focus(); }
    }
    row.scrollIntoView({ block: 'nearest' });
  }

  function moveRow(delta) {
    var rows = listRows();
    if (!rows.length) return false;
    var cur = doc.querySelector('table.list tr.is-current');
    var i = cur ? rows.indexOf(cur) : -1;
    if (i < 0) i = delta > 0 ? -1 : rows.length;
    highlight(rows, i + delta);
    return true;
  }

  function openRow() {
    var cur = doc.querySelector('table.list tr.is-current');
    if (!cur) return false;
    var link = cur.querySelector('a[href]');
    if (!link) return false;
    window.location.href = link.href;
    return true;
  }

  /* Keep the highlight in step with Tab / clicks inside a list. */
  doc.addEventListener('focusin', function (e) {
    var row = e.target.closest && e.target.closest('table.list > tbody > tr');
    if (!row) return;
    var rows = listRows();
    var i = rows.indexOf(row);
    if (i < 0 || i === current && row.classList.contains('is-current')) return;
    var old = doc.querySelector('table.list tr.is-current');
    if (old) old.classList.remove('is-current');
    row.classList.add('is-current');
    current = i;
  });

  /* ---- user menu (a <details>): close on Esc and outside click ---------- */
  function closeMenus(except) {
    var open = doc.querySelectorAll('details.usermenu[open]');
    for (var i = 0; i < open.length; i++) {
      if (open[i] !== except) open[i].removeAttribute('open');
    }
  }

  doc.addEventListener('click', function (e) {
    closeMenus(e.target.closest ? e.target.closest('details.usermenu') : null);
  });

  /* ---- one key handler ------------------------------------------------- */
  doc.addEventListener('keydown', function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    var key = e.key;

    if (key === 'Escape') {
      if (dialog && dialog.hasAttribute('open') && typeof dialog.close !== 'function') {
        dialog.removeAttribute('open');
        return;
      }
      var menu = doc.querySelector('details.usermenu[open]');
      if (menu) {
        menu.removeAttribute('open');
        var s = menu.querySelector('summary');
        if (s) s.focus();
      }
      return;
    }
    if (isTyping(e.target)) return;
    if (dialog && dialog.hasAttribute('open') && key !== '?') return;

    var handled = false;
    switch (key) {
    case '/': handled = focusSearch(); break;
    case '?': toggleShortcuts(); handled = true; break;
    case 'j': handled = moveRow(1); break;
    case 'k': handled = moveRow(-1); break;
    case 'Enter':
      /* A focused link or button does its own thing. */
      var t = e.target;
      if (t && t !== doc.body && (t.closest('a[href], button, summary, [role="button"]'))) return;
      handled = openRow();
      break;
    }
    if (handled) e.preventDefault();
  });

  /* ---- copy buttons beside read-only links and keys (input[data-copy]) - */
  function copyText(field, done) {
    field.focus();
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        if (doc.execCommand('copy')) done();
      });
    } else if (doc.execCommand('copy')) {
      done();
    }
  }

  function addCopyButtons() {
    var fields = doc.querySelectorAll('input[data-copy]');
    for (var i = 0; i < fields.length; i++) {
      (function (field) {
        var wrap = doc.createElement('span');
        wrap.className = 'copy-wrap';
        field.parentNode.insertBefore(wrap, field);
        wrap.appendChild(field);
        var btn = doc.createElement('button');
        btn.type = 'button';
        btn.className = 'btn btn-secondary btn-sm copy-btn';
        btn.textContent = 'Copy';
        btn.setAttribute('aria-live', 'polite');
        wrap.appendChild(btn);
        var timer = null;
        btn.addEventListener('click', function () {
          copyText(field, function () {
            btn.textContent = 'Copied';
            btn.classList.add('is-done');
            clearTimeout(timer);
            timer = setTimeout(function () {
              btn.textContent = 'Copy';
              btn.classList.remove('is-done');
            }, 2000);
          });
        });
        field.addEventListener('focus', function () { field.select(); });
      }(fields[i]));
    }
  }

  /* ---- reveal hints that only make sense with JS ----------------------- */
  function ready() {
    doc.documentElement.classList.add('js');
    addCopyButtons();
    var hints = doc.querySelectorAll('.js-only[hidden]');
    for (var i = 0; i < hints.length; i++) hints[i].removeAttribute('hidden');
  }
  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', ready);
  else ready();
}());
