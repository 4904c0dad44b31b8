// tlsedge's web console (docs/console.md): plain JavaScript, no build step,
// nothing loaded from elsewhere. It speaks only the JSON API under /v1 of
// the origin that served it, with the API token the operator types in
// (kept in sessionStorage: gone when the tab closes), sent as
// `Authorization: Bearer`.
//
// Rule: text from the API (certificate names, issuers, error messages: all
// of it may be chosen by whoever uploaded a certificate) reaches the page
// only through textContent, attribute values and form values, never as
// markup. el() below is the one way this file builds elements.
'use strict';

(function () {
  const TOKEN_KEY = 'tlsedge.token';
  const $ = (id) => document.getElementById(id);

  // An element with attributes (set as values, never parsed) and children
  // (strings become text nodes).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'onclick') node.addEventListener('click', value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(id, text, kind) {
    const node = $(id);
    node.textContent = text || '';
    node.classList.toggle('error', kind === 'error');
    node.classList.toggle('ok', kind === 'ok');
  }

  // --- the API ---------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  // One call: the parsed JSON answer, or an ApiError with the API's
  // message. A 401 signs out (the token is unknown or was removed).
  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + token(), Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'cannot reach the daemon: ' + e.message);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      let message = data && typeof data.error === 'string' ? data.error : 'HTTP ' + response.status;
      if (response.status === 429) {
        const wait = response.headers.get('Retry-After');
        if (wait) message += ' (retry in ' + wait + ' s)';
      }
      if (response.status === 401) signOut('Signed out: ' + message);
      throw new ApiError(response.status, message);
    }
    return data;
  }

  const enc = encodeURIComponent;
  // "2026-12-10T18:00:00Z" -> "2026-12-10 18:00:00 UTC"; anything else as it is.
  const when = (t) => (typeof t === 'string' ? t.replace(/^(\d{4}-\d\d-\d\d)T(.*)Z$/, '$1 $2 UTC') : t);

  // --- signing in --------------------------------------------------------

  function signIn(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
    $('token').value = '';
    for (const id of ['token-label', 'token', 'token-use']) $(id).hidden = true;
    $('token-forget').hidden = false;
    $('main').hidden = false;
    setText('status', 'Signed in.', 'ok');
    refreshAll();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    for (const id of ['token-label', 'token', 'token-use']) $(id).hidden = false;
    $('token-forget').hidden = true;
    $('main').hidden = true;
    setText('status', message || 'Enter an API token (tlsedge token add NAME --scopes ...).',
            message ? 'error' : undefined);
  }

  // --- certificates ------------------------------------------------------

  function expiryCell(c) {
    if (c.pending) return el('td', {}, 'requested ' + (when(c.requested) || ''));
    const days = c.days_left + (c.days_left === 1 ? ' day' : ' days');
    let mark = el('span', { class: 'badge good' }, days);
    if (c.expired) mark = el('span', { class: 'badge expired' }, 'expired');
    else if (c.expiring) mark = el('span', { class: 'badge expiring' }, days + ' left');
    return el('td', { class: 'expiry' }, (when(c.not_after) || '') + ' ', mark);
  }

  function certificateRow(c) {
    const names = (c.dns_names || []).concat(c.ip_addresses || []);
    const remove = el('button', {
      type: 'button', class: 'small danger', 'data-action': 'remove',
      onclick: () => removeCertificate(c.name, c.pending),
    }, c.pending ? 'Remove request' : 'Remove');
    return el('tr', { 'data-name': c.name, class: c.pending ? 'pending' : null },
      el('td', {}, c.name, c.pending ? el('span', { class: 'badge pending' }, 'pending CSR') : null,
         c.default ? el('span', { class: 'badge' }, 'default') : null),
      el('td', {}, names.join(', ')),
      el('td', {}, (c.sites || []).join(', ')),
      el('td', {}, c.pending ? '' : (c.issuer_cn || c.issuer || '')),
      expiryCell(c),
      el('td', {}, remove));
  }

  async function loadCertificates() {
    const body = $('cert-table').tBodies[0];
    try {
      const list = await api('GET', '/v1/certificates');
      body.replaceChildren(...list.map(certificateRow));
      if (list.length === 0) body.append(el('tr', {}, el('td', { colspan: 6 }, 'No certificates yet.')));
      setText('cert-message', '');
    } catch (e) {
      setText('cert-message', e.message, 'error');
    }
  }

  async function removeCertificate(name, pending) {
    const what = pending ? 'the pending request ' : 'the certificate ';
    if (!window.confirm('Remove ' + what + name + '?')) return;
    try {
      await api('DELETE', '/v1/certificates/' + enc(name));
    } catch (e) {
      // 409: in use by a site; the message names it.
      setText('cert-message', e.message, 'error');
      return;
    }
    await loadCertificates();
    setText('cert-message', 'Removed ' + what + name + '.', 'ok');
  }

  // Each line of a validation message goes to the field it is about: the
  // API starts each with the input's name ("key: ...", "chain: ...");
  // a line about neither goes to the chain, the upload's main field.
  function showFieldErrors(prefix, message, hasKey) {
    const chain = [];
    const key = [];
    for (const line of message.split('\n')) {
      if (hasKey && /^key\b/.test(line)) key.push(line);
      else chain.push(line);
    }
    setText(prefix + '-chain-error', chain.join('\n'), 'error');
    if (hasKey) setText(prefix + '-key-error', key.join('\n'), 'error');
  }

  function clearUploadErrors(prefix, hasKey) {
    setText(prefix + '-chain-error', '');
    if (hasKey) setText(prefix + '-key-error', '');
    setText(prefix + '-message', '');
  }

  function addedText(added) {
    return (added.replaced ? 'Replaced ' : 'Added ') + added.name + ' (serial ' + added.serial +
      ', until ' + when(added.not_after) + ')' + (added.notes && added.notes.length ? '; ' + added.notes.join('; ') : '');
  }

  async function upload(event) {
    event.preventDefault();
    clearUploadErrors('upload', true);
    const name = $('upload-name').value.trim();
    const body = { chain: $('upload-chain').value, key: $('upload-key').value,
                   replace: $('upload-replace').checked };
    try {
      const added = await api('PUT', '/v1/certificates/' + enc(name), body);
      setText('upload-message', addedText(added), 'ok');
      $('upload-key').value = '';  // the key is not kept in the page
      $('upload-key-file').value = '';
    } catch (e) {
      if (e.status === 422) showFieldErrors('upload', e.message, true);
      else setText('upload-message', e.message, 'error');
      return;
    }
    loadCertificates();
  }

  // --- the CSR workflow ----------------------------------------------------

  async function requestCsr(event) {
    event.preventDefault();
    setText('csr-message', '');
    $('csr-result').hidden = true;
    const name = $('csr-name').value.trim();
    const hosts = $('csr-hosts').value.split(/[\s,]+/).filter((h) => h !== '');
    const body = { hosts, key_type: $('csr-key-type').value };
    if ($('csr-subject').value.trim() !== '') body.subject = $('csr-subject').value.trim();
    try {
      const made = await api('POST', '/v1/certificates/' + enc(name), body);
      $('csr-output-name').textContent = made.name;
      $('csr-output').value = made.csr;
      $('csr-result').hidden = false;
      $('complete-name').value = made.name;
      setText('csr-message', 'Key kept on the edge; send this CSR to the CA.', 'ok');
    } catch (e) {
      setText('csr-message', e.message, 'error');
      return;
    }
    loadCertificates();
  }

  async function copyCsr() {
    const text = $('csr-output').value;
    try {
      await navigator.clipboard.writeText(text);
      setText('csr-message', 'CSR copied.', 'ok');
    } catch (e) {
      $('csr-output').select();  // no clipboard (not a secure context): select it to copy by hand
      setText('csr-message', 'Select and copy the CSR by hand.', undefined);
    }
  }

  async function completeRequest(event) {
    event.preventDefault();
    clearUploadErrors('complete', false);
    const name = $('complete-name').value.trim();
    try {
      const added = await api('PUT', '/v1/certificates/' + enc(name), { chain: $('complete-chain').value });
      setText('complete-message', addedText(added), 'ok');
    } catch (e) {
      if (e.status === 422) showFieldErrors('complete', e.message, false);
      else setText('complete-message', e.message, 'error');
      return;
    }
    loadCertificates();
  }

  // --- which certificate a host gets -----------------------------------------

  async function which(event) {
    event.preventDefault();
    const out = $('which-result');
    out.hidden = true;
    setText('which-message', '');
    try {
      const w = await api('GET', '/v1/which?host=' + enc($('which-host').value.trim()));
      out.replaceChildren();
      for (const [label, value] of [['Host', w.host], ['Certificate', w.certificate],
        ['Serial', w.serial], ['How', w.how], ['Site', w.site || '-'], ['SHA-256', w.sha256]]) {
        out.append(el('dt', {}, label), el('dd', { 'data-field': label.toLowerCase() }, value));
      }
      out.hidden = false;
    } catch (e) {
      setText('which-message', e.message, 'error');
    }
  }

  // --- ACME sites ----------------------------------------------------------

  function acmeRow(s) {
    const action = (what) => el('button', {
      type: 'button', class: what === 'revoke' ? 'small danger' : 'small', 'data-action': what,
      onclick: () => acmeAction(s.site, what),
    }, what === 'revoke' ? 'Revoke' : 'Renew');
    const next = s.next_renewal ? when(s.next_renewal) + (s.next_reason ? ' (' + s.next_reason + ')' : '') : '-';
    const error = s.last_error
      ? el('span', { class: 'error' }, s.last_error +
          (s.consecutive_failures ? ' (' + s.consecutive_failures + ' failures)' : ''))
      : '-';
    return el('tr', { 'data-site': s.site },
      el('td', {}, s.site, s.in_flight ? el('span', { class: 'badge' }, 'ordering') : null),
      el('td', {}, s.stored ? s.certificate : s.certificate + ' (none yet)'),
      el('td', {}, when(s.not_after) || '-'),
      el('td', {}, next),
      el('td', {}, error),
      el('td', {}, action('renew'), ' ', action('revoke')));
  }

  async function loadAcme() {
    const body = $('acme-table').tBodies[0];
    try {
      const status = await api('GET', '/v1/acme');
      body.replaceChildren(...status.sites.map(acmeRow));
      if (status.sites.length === 0) body.append(el('tr', {}, el('td', { colspan: 6 }, 'No ACME sites.')));
      setText('acme-message', '');
    } catch (e) {
      body.replaceChildren();
      setText('acme-message', e.message, e.status === 503 ? undefined : 'error');
    }
  }

  async function acmeAction(site, what) {
    if (what === 'revoke' &&
        !window.confirm('Revoke the certificate of ' + site + ' and order a new one?')) return;
    let message = (what === 'renew' ? 'Renewal' : 'Revocation') + ' of ' + site + ' started.';
    let kind = 'ok';
    try {
      await api('POST', '/v1/acme/' + enc(site) + '/' + what);
    } catch (e) {
      message = e.message;
      kind = 'error';
    }
    await loadAcme();
    setText('acme-message', message, kind);
  }

  // --- sites -------------------------------------------------------------
  // Every site (GET /v1/sites) with its hosts, where it comes from, the
  // certificate it is bound to and its HTTPS redirect, joined with its ACME
  // status (GET /v1/acme) by name. API sites can be changed here: each
  // change PUTs the whole site back (as GET gave it, without `source`) with
  // one thing changed. Sites of the configuration file are read-only (the
  // API answers 409): shown with their switches disabled and no buttons.

  function certificateText(tls) {
    if (tls && tls.certificate) return [].concat(tls.certificate).join(' + ');
    if (tls && tls.acme) return 'ACME';
    return 'newest covering';
  }

  function acmeCell(site, status) {
    if (!status) return el('td', {}, site.tls && site.tls.acme ? 'no status yet' : '-');
    const next = status.next_renewal ? 'renews ' + when(status.next_renewal) : null;
    return el('td', { class: 'site-acme' },
      el('div', {}, status.not_after ? 'until ' + when(status.not_after) : 'no certificate yet'),
      next ? el('div', {}, next) : null,
      status.last_error ? el('div', { class: 'acme-error', 'data-field': 'acme-error' },
                             status.last_error) : null);
  }

  function siteRows(site, acme, stored) {
    const name = site.name;
    const api = site.source === 'api';
    const tls = site.tls || {};
    const redirect = el('input', { type: 'checkbox', 'data-action': 'redirect',
                                   checked: site.redirect_https, disabled: !api });
    const cert = el('td', {}, el('span', { 'data-field': 'bound' }, certificateText(site.tls)));
    const actions = el('td', {});
    if (api) {
      redirect.addEventListener('change', () => changeSite(site, (s) => {
        s.redirect_https = redirect.checked;
      }));
      const acmeSwitch = el('input', { type: 'checkbox', 'data-action': 'acme', checked: tls.acme });
      acmeSwitch.addEventListener('change', () => changeSite(site, (s) => {
        s.tls = Object.assign({}, s.tls);
        if (acmeSwitch.checked) {
          s.tls.acme = true;
          delete s.tls.certificate;
        } else {
          delete s.tls.acme;
        }
      }));
      const choice = el('select', { 'data-field': 'bind' },
        ...stored.map((c) => el('option', { value: c }, c)));
      if (tls.certificate && stored.includes(tls.certificate)) choice.value = tls.certificate;
      const bind = el('button', { type: 'button', class: 'small', 'data-action': 'bind',
                                  onclick: () => changeSite(site, (s) => {
                                    s.tls = Object.assign({}, s.tls, { certificate: choice.value });
                                    delete s.tls.acme;
                                  }) }, 'Bind');
      cert.append(el('div', { class: 'controls' }, choice, ' ', bind),
                  el('label', { class: 'switch' }, acmeSwitch, ' Get a certificate (ACME)'));
      actions.append(el('button', { type: 'button', class: 'small danger', 'data-action': 'delete',
                                    onclick: () => deleteSite(name) }, 'Delete'));
    } else {
      actions.append(el('span', { class: 'hint' }, 'defined in the configuration file'));
    }
    const https = el('td', {}, el('label', { class: 'switch' }, redirect, ' redirect to HTTPS'),
                     site.hsts ? el('div', { class: 'hint' }, 'HSTS max-age ' + site.hsts.max_age) : null);
    return el('tbody', { 'data-site': name, class: api ? 'api' : 'config' },
      el('tr', {},
        el('td', {}, name, el('span', { class: 'badge ' + site.source, 'data-field': 'source' }, site.source)),
        el('td', {}, (site.hosts || []).join(', ')),
        cert, https, acmeCell(site, acme), actions),
      el('tr', { class: 'site-message' },
        el('td', { colspan: 6 }, el('p', { class: 'message', 'data-field': 'message' }))));
  }

  async function loadSites() {
    const table = $('sites-table');
    try {
      const [sites, certificates, acme] = await Promise.all([
        api('GET', '/v1/sites'),
        api('GET', '/v1/certificates'),
        api('GET', '/v1/acme').catch(() => ({ sites: [] })),  // 503: no ACME configured
      ]);
      const stored = certificates.filter((c) => !c.pending).map((c) => c.name);
      const status = new Map(acme.sites.map((s) => [s.site, s]));
      // A certificate chosen in a site's list and not bound yet stays
      // chosen: a list drawn again meanwhile (another change's answer)
      // must not make Bind bind another one.
      const chosen = new Map();
      for (const body of Array.from(table.tBodies)) {
        const select = body.querySelector('select[data-field="bind"]');
        if (select) chosen.set(body.dataset.site, select.value);
        body.remove();
      }
      table.append(...sites.map((s) => siteRows(s, status.get(s.name), stored)));
      for (const body of Array.from(table.tBodies)) {
        const select = body.querySelector('select[data-field="bind"]');
        const value = chosen.get(body.dataset.site);
        if (select && value && stored.includes(value)) select.value = value;
      }
      setText('sites-message', sites.length === 0 ? 'No sites.' : '');
    } catch (e) {
      setText('sites-message', e.message, 'error');
    }
  }

  function siteMessage(name, text, kind) {
    const body = Array.from($('sites-table').tBodies).find((b) => b.dataset.site === name);
    const node = body ? body.querySelector('[data-field="message"]') : $('sites-message');
    node.textContent = text;
    node.classList.toggle('error', kind === 'error');
    node.classList.toggle('ok', kind === 'ok');
  }

  // PUTs `site` back with `change` applied; then lists the sites again (a
  // refused change shows the switch as it still is) and the certificates
  // (their `sites` column follows the binding).
  async function changeSite(site, change) {
    const body = JSON.parse(JSON.stringify(site));
    delete body.source;
    change(body);
    let message = 'Saved.';
    let kind = 'ok';
    try {
      await api('PUT', '/v1/sites/' + enc(site.name), body);
    } catch (e) {
      message = e.message;
      kind = 'error';
    }
    await loadSites();
    siteMessage(site.name, message, kind);
    loadCertificates();
    loadAcme();
  }

  async function deleteSite(name) {
    if (!window.confirm('Delete the site ' + name + '?')) return;
    try {
      await api('DELETE', '/v1/sites/' + enc(name));
    } catch (e) {
      siteMessage(name, e.message, 'error');
      return;
    }
    await loadSites();
    setText('sites-message', 'Deleted the site ' + name + '.', 'ok');
    loadCertificates();
  }

  function refreshAll() {
    loadCertificates();
    loadAcme();
    loadSites();
  }

  // Reads a chosen file into a textarea (nothing leaves the page until Upload).
  function fileInto(inputId, textareaId) {
    $(inputId).addEventListener('change', async () => {
      const file = $(inputId).files[0];
      if (file) $(textareaId).value = await file.text();
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const value = $('token').value.trim();
      if (value !== '') signIn(value);
    });
    $('token-forget').addEventListener('click', () => signOut());
    $('refresh').addEventListener('click', refreshAll);
    $('upload-form').addEventListener('submit', upload);
    $('csr-form').addEventListener('submit', requestCsr);
    $('csr-copy').addEventListener('click', copyCsr);
    $('complete-form').addEventListener('submit', completeRequest);
    $('which-form').addEventListener('submit', which);
    fileInto('upload-chain-file', 'upload-chain');
    fileInto('upload-key-file', 'upload-key');
    fileInto('complete-chain-file', 'complete-chain');
    if (token() !== '') signIn(token());
    else signOut();
  });
}());
