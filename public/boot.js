// Starts the app. A file, not an inline script, so the Content-Security-Policy needs no 'unsafe-inline'
// for scripts (see docs/security.md).
import init from './pkg/lamina_app.js';

init().catch((e) => {
  document.body.textContent = 'Lamina could not start: ' + e;
});
