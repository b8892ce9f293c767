// Starts the web app (a file of its own: the page's Content-Security-Policy allows no inline script).
import init from '/app/mykey_web.js';
init();
