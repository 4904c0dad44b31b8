// The web console in a real browser (Debian's chromium, driven by
// playwright-core) against a real daemon that tests/integration/
// test_console.py started: sign in with an API token, the certificate list
// with its expiry marks and sites, uploads refused with the message against
// the field it concerns, a replace that changes what `which` answers, a
// refused delete, the CSR workflow (request, sign with the test CA, install;
// remove a pending request), ACME sites and a renewal, markup in a message
// shown as text, the sites (a YAML one read-only; an API one bound to one
// certificate then another, as `which` shows, and its HTTPS redirect
// switched, as GET /v1/sites/NAME shows; a refused Bind's message shown
// under the site; an ACME error, put into /v1/acme's answer, shown against
// its site as text). Also: every request the page makes goes to the daemon's
// origin, and nothing breaks the page's Content-Security-Policy.
//
// Usage: node console_test.mjs PLAN.json   (NODE_PATH: playwright-core's
// node_modules, which scripts/setup.sh installs). PLAN is written by
// test_console.py. Prints one JSON report on stdout; exit status 0 when every
// step passed, 1 otherwise, 2 when the browser could not be started.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const report = { ok: false, steps: [], observed: {}, console_errors: [], foreign_requests: [],
                 screenshots: [] };
const STEP_TIMEOUT = 30000;  // per step; test_console.py bounds the whole run

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls a locator's text until `pred` holds; fails naming what it last saw.
async function waitText(locator, pred, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  let seen = null;
  for (;;) {
    seen = await locator.textContent({ timeout: 1000 }).catch(() => null);
    if (seen !== null && pred(seen)) return seen;
    if (Date.now() > deadline) throw new Error(`${what}: last seen ${JSON.stringify(seen)}`);
    await sleep(100);
  }
}

async function waitCount(locator, pred, what, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const n = await locator.count();
    if (pred(n)) return n;
    if (Date.now() > deadline) throw new Error(`${what}: count ${n}`);
    await sleep(100);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function main() {
  const { chromium } = require('playwright-core');
  let context;
  try {
    context = await chromium.launchPersistentContext(plan.user_data_dir, {
      executablePath: plan.chromium,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      ignoreHTTPSErrors: true,  // the loopback listener's test CA is not in chromium's store
      viewport: { width: 1100, height: 900 },
      timeout: 30000,
    });
  } catch (e) {
    report.steps.push({ name: 'launch', ok: false, detail: String(e && e.stack || e) });
    return 2;
  }
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(10000);
    page.on('dialog', (dialog) => dialog.accept());
    page.on('console', (msg) => {
      // Chromium logs each 4xx answer ("Failed to load resource"); the steps
      // cause those on purpose. Anything else (a CSP refusal, an exception)
      // is a finding.
      if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
        report.console_errors.push(msg.text());
      }
    });
    page.on('pageerror', (error) => report.console_errors.push('page error: ' + error.message));
    page.on('request', (request) => {
      if (!request.url().startsWith(plan.url + '/')) report.foreign_requests.push(request.url());
    });
    const $ = (selector) => page.locator(selector);
    const shot = async (selector, name) => {
      const file = path.join(plan.screenshots, name);
      await $(selector).screenshot({ path: file });
      report.screenshots.push(file);
    };
    const certRow = (name) => $(`#cert-table tbody tr[data-name="${name}"]`);
    const siteBody = (name) => $(`#sites-table tbody[data-site="${name}"]`);
    const observed = report.observed;

    const steps = [
      ['opens at / and asks for a token', async () => {
        const response = await page.goto(plan.url + '/');
        check(response.ok(), 'status ' + response.status());
        observed.url = page.url();
        check(page.url() === plan.url + '/console/', 'redirected to ' + page.url());
        observed.csp = (await response.allHeaders())['content-security-policy'];
        await $('#token').waitFor({ state: 'visible' });
        check(await $('#main').isHidden(), 'the console shows before a token');
      }],
      ['a wrong token is refused', async () => {
        await $('#token').fill('tle_wrong');
        await $('#token-use').click();
        observed.wrong_token = await waitText($('#status'), (t) => t.includes('Signed out'),
                                              'the refusal');
        check(await $('#main').isHidden(), 'the console shows after a refusal');
      }],
      ['signs in and lists the certificates', async () => {
        await $('#token').fill(plan.token);
        await $('#token-use').click();
        const site = plan.bound;
        observed.bound_row = await waitText(certRow(site.certificate).locator('td').nth(2),
                                            (t) => t.includes(site.site), 'the bound site');
        observed.expiring_mark = await certRow(site.certificate).locator('.badge.expiring').textContent();
        observed.good_mark = await certRow(plan.removable).locator('.badge.good').textContent();
        observed.issuer = await certRow(site.certificate).locator('td').nth(3).textContent();
        observed.token_stored = await page.evaluate(() => sessionStorage.getItem('tlsedge.token') !== null);
        await shot('#certificates', 'certificates.png');
      }],
      ['a broken chain is shown against the chain field', async () => {
        const u = plan.upload;
        await $('#upload-name').fill(u.name);
        await $('#upload-replace').check();
        await $('#upload-chain').fill(u.broken_chain);
        await $('#upload-key').fill(u.good_key);
        await $('#upload-submit').click();
        observed.chain_error = await waitText($('#upload-chain-error'), (t) => t !== '', 'chain error');
        observed.key_error_then = await $('#upload-key-error').textContent();
        await shot('#upload', 'upload-error.png');
      }],
      ['a key of another certificate is shown against the key field', async () => {
        const u = plan.upload;
        await $('#upload-chain').fill(u.good_chain);
        await $('#upload-key').fill(u.other_key);
        await $('#upload-submit').click();
        observed.key_error = await waitText($('#upload-key-error'), (t) => t !== '', 'key error');
        observed.chain_error_then = await $('#upload-chain-error').textContent();
      }],
      ['which before the replace', async () => {
        await $('#which-host').fill(plan.bound.host);
        await $('#which-submit').click();
        observed.which_before = await waitText($('#which-result dd[data-field="serial"]'),
                                               (t) => t !== '', 'which serial');
      }],
      ['a good upload replaces the certificate and which changes', async () => {
        const u = plan.upload;
        await $('#upload-key').fill(u.good_key);
        await $('#upload-submit').click();
        observed.upload_message = await waitText($('#upload-message'), (t) => t.startsWith('Replaced'),
                                                 'upload message');
        check(await $('#upload-key').inputValue() === '', 'the key stays in the form');
        await $('#which-submit').click();
        observed.which_after = await waitText($('#which-result dd[data-field="serial"]'),
                                              (t) => t !== observed.which_before, 'which serial after');
        observed.which_site = await $('#which-result dd[data-field="site"]').textContent();
        await shot('#which', 'which.png');
      }],
      ['markup in an error message is shown as text', async () => {
        await $('#upload-name').fill(plan.markup_name);
        await $('#upload-submit').click();
        // The message (a 4xx naming the bad name) lands under the form or a field.
        observed.markup_text = await waitText($('#upload-form'), (t) => t.includes('<b>'),
                                              'the name in a message');
        observed.markup_elements = await $('#upload b, #upload img').count();
      }],
      ['removing a certificate in use is refused', async () => {
        await certRow(plan.bound.certificate).locator('button[data-action="remove"]').click();
        observed.in_use = await waitText($('#cert-message'), (t) => t.includes('in use'), 'in-use message');
      }],
      ['removing an unused certificate', async () => {
        await certRow(plan.removable).locator('button[data-action="remove"]').click();
        await waitCount(certRow(plan.removable), (n) => n === 0, 'the removed row');
        observed.removed_message = await $('#cert-message').textContent();
      }],
      ['a CSR is made and shown', async () => {
        const r = plan.csr;
        await $('#csr-name').fill(r.name);
        await $('#csr-hosts').fill(r.hosts.join(', '));
        await $('#csr-key-type').selectOption('ecdsa-p256');
        await $('#csr-subject').fill(r.subject);
        await $('#csr-submit').click();
        await $('#csr-result').waitFor({ state: 'visible' });
        observed.csr = await $('#csr-output').inputValue();
        check(observed.csr.startsWith('-----BEGIN CERTIFICATE REQUEST-----'), 'not a CSR');
        observed.pending_mark = await waitText(certRow(r.name).locator('.badge.pending'),
                                               (t) => t !== '', 'pending mark');
        await shot('#csr', 'csr.png');
      }],
      ['the signed certificate completes the request', async () => {
        const s = plan.csr.sign;
        fs.writeFileSync(s.csr, observed.csr);
        execFileSync('openssl', ['x509', '-req', '-in', s.csr, '-CA', s.ca, '-CAkey', s.ca_key,
                                 '-set_serial', s.serial, '-days', '3', '-sha256', '-extfile', s.ext,
                                 '-extensions', 'v3_leaf', '-out', s.out], { timeout: 20000 });
        check(await $('#complete-name').inputValue() === plan.csr.name, 'name not carried over');
        await $('#complete-chain').fill(fs.readFileSync(s.out, 'utf8'));
        await $('#complete-submit').click();
        observed.complete_message = await waitText($('#complete-message'), (t) => t.startsWith('Added'),
                                                   'install message');
        await waitCount(certRow(plan.csr.name).locator('.badge.pending'), (n) => n === 0, 'still pending');
      }],
      ['a pending request is removed', async () => {
        await $('#csr-name').fill(plan.csr.discarded);
        await $('#csr-hosts').fill(plan.csr.hosts[0]);
        await $('#csr-subject').fill('');
        await $('#csr-submit').click();
        const row = certRow(plan.csr.discarded);
        await waitCount(row.locator('.badge.pending'), (n) => n === 1, 'the new request');
        await row.locator('button[data-action="remove"]').click();
        await waitCount(row, (n) => n === 0, 'the removed request');
      }],
      ['ACME sites and a renewal', async () => {
        const row = $(`#acme-table tbody tr[data-site="${plan.acme_site}"]`);
        const deadline = Date.now() + 25000;
        // The internal CA issues within seconds of the start; Refresh until then.
        for (;;) {
          const notAfter = await row.locator('td').nth(2).textContent({ timeout: 1000 }).catch(() => '');
          if (notAfter && notAfter !== '-') break;
          if (Date.now() > deadline) throw new Error('no ACME certificate shown: ' + notAfter);
          await $('#refresh').click();
          await sleep(500);
        }
        observed.acme_certificate = await row.locator('td').nth(1).textContent();
        await row.locator('button[data-action="renew"]').click();
        observed.renew_message = await waitText($('#acme-message'), (t) => t.includes('started'),
                                                'renew message');
        await shot('#acme', 'acme.png');
      }],
      ['sites with their source, read-only when from the configuration file', async () => {
        const s = plan.sites;
        await $('#refresh').click();
        const yaml = siteBody(s.yaml_site);
        observed.yaml_source = await waitText(yaml.locator('[data-field="source"]'), (t) => t !== '',
                                              'the YAML site');
        observed.yaml_bound = await yaml.locator('[data-field="bound"]').textContent();
        observed.yaml_note = await yaml.textContent();
        observed.yaml_controls = await yaml.locator('button, select').count();
        observed.yaml_redirect_disabled = await yaml.locator('input[data-action="redirect"]').isDisabled();
        const news = siteBody(s.api_site);
        observed.api_source = await news.locator('[data-field="source"]').textContent();
        observed.api_bound_before = await news.locator('[data-field="bound"]').textContent();
        observed.acme_site_bound = await siteBody(plan.acme_site).locator('[data-field="bound"]').textContent();
      }],
      ['binding certificate A then B changes which', async () => {
        const s = plan.sites;
        const news = siteBody(s.api_site);
        observed.which_bound = [];
        for (const cert of s.certificates) {
          await news.locator('select[data-field="bind"]').selectOption(cert);
          await news.locator('button[data-action="bind"]').click();
          await waitText(siteBody(s.api_site).locator('[data-field="bound"]'), (t) => t === cert,
                         'the binding of ' + cert);
          await $('#which-host').fill(s.host);
          await $('#which-submit').click();
          observed.which_bound.push(await waitText($('#which-result dd[data-field="certificate"]'),
                                                   (t) => t === cert, 'which after binding ' + cert));
        }
        observed.bound_message = await siteBody(s.api_site).locator('[data-field="message"]').textContent();
        observed.cert_sites = await waitText(certRow(s.certificates[1]).locator('td').nth(2),
                                             (t) => t.includes(s.api_site), 'the sites column');
      }],
      ['the HTTPS redirect switch', async () => {
        const s = plan.sites;
        const get = async () => {
          const r = await page.request.get(plan.url + '/v1/sites/' + s.api_site,
                                           { headers: { Authorization: 'Bearer ' + plan.token } });
          check(r.ok(), 'GET /v1/sites: ' + r.status());
          return (await r.json()).redirect_https;
        };
        observed.redirect_before = await get();
        await siteBody(s.api_site).locator('input[data-action="redirect"]').click();
        const deadline = Date.now() + 10000;
        while ((observed.redirect_after = await get()) === observed.redirect_before) {
          if (Date.now() > deadline) throw new Error('redirect_https did not change');
          await sleep(200);
        }
        await waitText(siteBody(s.api_site).locator('[data-field="message"]'), (t) => t === 'Saved.',
                       'saved');
        observed.redirect_checked = await siteBody(s.api_site).locator('input[data-action="redirect"]').isChecked();
        await shot('#sites', 'sites.png');
      }],
      ['a refused change is shown against the site', async () => {
        // The certificate chosen in the page is removed (by another client)
        // before Bind: the PUT is refused (422) and the site stays bound.
        const s = plan.sites;
        const news = siteBody(s.api_site);
        await news.locator('select[data-field="bind"]').selectOption(s.certificates[0]);
        const r = await page.request.delete(plan.url + '/v1/certificates/' + s.certificates[0],
                                            { headers: { Authorization: 'Bearer ' + plan.token } });
        check(r.ok(), 'DELETE /v1/certificates: ' + r.status());
        await news.locator('button[data-action="bind"]').click();
        const message = siteBody(s.api_site).locator('[data-field="message"].error');
        observed.refused_message = await waitText(message, (t) => t !== '', 'the refusal');
        observed.bound_after_refusal = await siteBody(s.api_site).locator('[data-field="bound"]').textContent();
      }],
      ['an ACME error is shown against its site, as text', async () => {
        // The internal CA has no pre-flight, so its refusal is put into the
        // real /v1/acme answer here (an entry for the API site, the shape
        // GET /v1/acme gives): this checks the join by site name and that
        // the message is shown, as text.
        const s = plan.sites;
        await page.route('**/v1/acme', async (route) => {
          const response = await route.fetch();
          const status = await response.json();
          status.sites.push({ site: s.api_site, certificate: 'acme-' + s.api_site, stored: false,
                              serial: null, not_after: null, schedule_known: false,
                              next_renewal: null, next_reason: null, in_flight: false,
                              consecutive_failures: 2, last_error: s.acme_error,
                              last_error_at: null, retry_delay_seconds: 60 });
          await route.fulfill({ response, json: status });
        });
        try {
          await $('#refresh').click();
          observed.site_acme_error = await waitText(
            siteBody(s.api_site).locator('[data-field="acme-error"]'), (t) => t !== '', 'the ACME error');
          observed.site_acme_markup = await $('#sites b').count();
        } finally {
          await page.unroute('**/v1/acme');
        }
      }],
      ['signs out', async () => {
        await $('#token-forget').click();
        check(await $('#main').isHidden(), 'still shown');
        observed.token_after_sign_out = await page.evaluate(() => sessionStorage.getItem('tlsedge.token'));
      }],
    ];
    for (const [name, fn] of steps) {
      const started = Date.now();
      try {
        await Promise.race([fn(), sleep(STEP_TIMEOUT).then(() => {
          throw new Error(`over ${STEP_TIMEOUT} ms`);
        })]);
        report.steps.push({ name, ok: true, ms: Date.now() - started });
      } catch (e) {
        report.steps.push({ name, ok: false, ms: Date.now() - started, detail: String(e && e.message || e) });
        try {
          await page.screenshot({ path: path.join(plan.screenshots, 'failure.png'), fullPage: true });
        } catch (ignored) { /* the report says what failed */ }
        break;
      }
    }
  } finally {
    await context.close().catch(() => {});
  }
  report.ok = report.steps.length > 0 && report.steps.every((s) => s.ok) &&
              report.console_errors.length === 0 && report.foreign_requests.length === 0;
  return report.ok ? 0 : 1;
}

let status = 1;
try {
  status = await main();
} catch (e) {
  report.steps.push({ name: 'script', ok: false, detail: String(e && e.stack || e) });
}
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(status);
