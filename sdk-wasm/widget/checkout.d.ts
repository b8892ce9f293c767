/** Colours, font and radius of the widget. */
export interface CheckoutAppearance {
  colorPrimary?: string;
  colorText?: string;
  colorBackground?: string;
  fontFamily?: string;
  borderRadius?: string;
}
export type CheckoutEvent = 'ready' | 'resize' | 'success' | 'cancel' | 'error';
export interface CheckoutOptions {
  /** The store's publishable key (`PUT /v1/shops/{shop}/checkout`). */
  publishableKey: string;
  /** The session's client secret, from the store's server. */
  clientSecret: string;
  locale?: 'ja' | 'en';
  appearance?: CheckoutAppearance;
  /** The points cloud's origin; by default the origin this module was loaded from. */
  cloudOrigin?: string;
  onReady?: (detail: {}) => void;
  onResize?: (detail: { height: number }) => void;
  onSuccess?: (detail: { session: string; state: 'completed' | 'authorized'; points: number }) => void;
  onCancel?: (detail: {}) => void;
  onError?: (detail: { code: string; message: string }) => void;
}
export interface MountedCheckout {
  frame: HTMLIFrameElement;
  on(type: CheckoutEvent, handler: (detail: any) => void): MountedCheckout;
  off(type: CheckoutEvent, handler: (detail: any) => void): MountedCheckout;
  setLocale(locale: 'ja' | 'en'): void;
  unmount(): void;
}
/** Mounts the checkout widget into `element`. */
export function mountCheckout(element: Element, options: CheckoutOptions): MountedCheckout;
