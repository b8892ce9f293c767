// A stand-in for navigator.usb: one Sony PaSoRi whose bulk transfers go to a simulated reader
// in the test process (`mykey_tests::usb_sim`), so the SDK's web-sys WebUSB code runs for real
// in Chromium. `requested` keeps the filters the page asked with.
const b64 = (u8) => btoa(String.fromCharCode(...u8));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export function install(sim, productId) {
  const endpoints = [
    { endpointNumber: 2, direction: 'out', type: 'bulk', packetSize: 64 },
    { endpointNumber: 1, direction: 'in', type: 'bulk', packetSize: 64 },
  ];
  // The RC-S300's CCID interface comes first and is class 0B (protected in Chrome).
  const interfaces = productId === 0x0dc9
    ? [{ interfaceNumber: 0, alternate: { interfaceClass: 0x0b, endpoints: [] } }, { interfaceNumber: 1, alternate: { interfaceClass: 0xff, endpoints } }]
    : [{ interfaceNumber: 0, alternate: { interfaceClass: 0xff, endpoints } }];
  const device = {
    vendorId: 0x054c,
    productId,
    configuration: null,
    claimed: [],
    async open() {},
    async selectConfiguration(value) { this.configuration = { configurationValue: value, interfaces }; },
    async claimInterface(n) {
      if (interfaces.find((i) => i.interfaceNumber === n).alternate.interfaceClass === 0x0b) {
        throw new DOMException('The requested interface implements a protected class.', 'SecurityError');
      }
      this.claimed.push(n);
    },
    async transferOut(endpoint, data) {
      // Copied before the first await: `data` may be a view into wasm memory.
      const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
      await fetch(sim + '/out', { method: 'POST', body: b64(bytes) });
      return { status: 'ok', bytesWritten: bytes.length };
    },
    async transferIn(endpoint, length) {
      for (;;) {
        const r = await fetch(sim + '/in', { method: 'POST' });
        if (r.status === 200) {
          const u8 = unb64(await r.text());
          return { status: 'ok', data: new DataView(u8.buffer) };
        }
        await new Promise((done) => setTimeout(done, 5));
      }
    },
  };
  const usb = {
    requested: [],
    async requestDevice(options) { this.requested.push(options); return device; },
    async getDevices() { return [device]; },
  };
  Object.defineProperty(navigator, 'usb', { value: usb, configurable: true });
  return usb;
}
