/* board.js: drag and drop (and [ ] keys) between the board's columns */
(function () {
  'use strict';

  var board = document.querySelector('.board');
  if (!board) return;
  var csrf = board.getAttribute('data-csrf') || '';
  var message = document.querySelector('.board-message');
  var dragged = null;

  function columns() {
    return Array.prototype.slice.call(board.querySelectorAll('.board-col'));
  }

  function say(text) {
    if (!message) return;
    message.textContent = text;
    message.hidden = !text;
  }

  function countOf(col) {
    var n = col.querySelector('.board-col-head .muted');
    if (n) n.textContent = String(col.querySelectorAll('.board-card').length);
  }

  /* Puts card into col before ref (null: at the end) and tells the server. */
  function move(card, col, ref) {
    var from = card.parentNode, next = card.nextSibling;
    var status = col.getAttribute('data-status');
    var list = col.querySelector('.board-cards');
    var body = new URLSearchParams();

    if (status === 'closed') {
      say('Close the ticket from its page: the close guard asks about time.');
      return;
    }
    list.insertBefore(card, ref);
    body.set('status', status);
    if (ref && ref.getAttribute('data-id')) {
      body.set('before_id', ref.getAttribute('data-id'));
    } else {
      var prev = card.previousElementSibling;
      if (prev && prev.getAttribute('data-id')) body.set('after_id', prev.getAttribute('data-id'));
    }
    columns().forEach(countOf);
    say('');
    card.setAttribute('aria-busy', 'true');
    fetch('/tickets/' + card.getAttribute('data-id') + '/move', {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'Accept': 'application/json',
        'Content-Type': 'application/x-www-form-urlencoded',
        'X-CSRF-Token': csrf
      },
      body: body.toString()
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) throw new Error((data && data.error && data.error.message) || ('could not move the card (' + res.status + ')'));
        var sel = card.querySelector('select[name="status"]');
        if (sel) sel.value = status;
        card.setAttribute('data-moved', status);
      });
    }).catch(function (err) {
      from.insertBefore(card, next);
      columns().forEach(countOf);
      say(err.message);
    }).then(function () {
      card.removeAttribute('aria-busy');
      card.focus();
    });
  }

  /* The card the pointer is above, to drop before it. */
  function cardAt(list, y) {
    var cards = list.querySelectorAll('.board-card'), i, box;
    for (i = 0; i < cards.length; i++) {
      if (cards[i] === dragged) continue;
      box = cards[i].getBoundingClientRect();
      if (y < box.top + box.height / 2) return cards[i];
    }
    return null;
  }

  board.addEventListener('dragstart', function (e) {
    var card = e.target.closest && e.target.closest('.board-card');
    if (!card || !card.draggable) return;
    dragged = card;
    e.dataTransfer.effectAllowed = 'move';
    e.dataTransfer.setData('text/plain', card.getAttribute('data-id'));
    card.classList.add('is-dragging');
  });
  board.addEventListener('dragend', function () {
    if (dragged) dragged.classList.remove('is-dragging');
    dragged = null;
  });
  board.addEventListener('dragover', function (e) {
    var col = e.target.closest && e.target.closest('.board-col');
    if (!dragged || !col || col.getAttribute('data-status') === 'closed') return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'move';
  });
  board.addEventListener('drop', function (e) {
    var col = e.target.closest && e.target.closest('.board-col');
    if (!dragged || !col) return;
    e.preventDefault();
    move(dragged, col, cardAt(col.querySelector('.board-cards'), e.clientY));
  });

  /* [ and ] move the focused card one column left or right. */
  board.addEventListener('keydown', function (e) {
    var card = e.target;
    var cols, i, to;
    if (!card.classList || !card.classList.contains('board-card')) return;
    if (e.key !== '[' && e.key !== ']') return;
    e.preventDefault();
    cols = columns();
    i = cols.indexOf(card.closest('.board-col'));
    to = cols[i + (e.key === ']' ? 1 : -1)];
    if (!to) return;
    move(card, to, to.querySelector('.board-card'));
  });

  /* With script, the per-card forms are not needed. */
  Array.prototype.forEach.call(board.querySelectorAll('.board-move'), function (f) {
    f.classList.add('js-hidden');
  });
})();
