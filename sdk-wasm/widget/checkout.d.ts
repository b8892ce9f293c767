/** Colours, font and radius of the widget. */
export interface CheckoutAppearance {
  colorPrimary?: string;
  colorText?: string;
  colorBackground?: string;
  fontFamily?: string;
  borderRadius?: string;
}
export type CheckoutEvent = 'ready' | 'resize' | 'success' | 'cancel' | 'error' | 'assigned';
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
/** Mounts a partner's link confirmation (a link session's client secret) into `element`. */
export function mountLink(element: Element, options: CheckoutOptions): MountedCheckout;
export interface CouponOptions {
  /** The partner's publishable key (`PUT /v1/partners/{partner}/embedding`). */
  publishableKey: string;
  /** A code to fill in (from a redemption URL or a QR code); the member may type one instead. */
  code?: string;
  locale?: 'ja' | 'en';
  appearance?: CheckoutAppearance;
  cloudOrigin?: string;
  onReady?: (detail: {}) => void;
  onSuccess?: (detail: { code: string; points: number }) => void;
  onAssigned?: (detail: { municipality: number; points: number }) => void;
  onError?: (detail: { code: string; message: string }) => void;
}
/** Mounts a partner's coupon redemption into `element`. */
export function mountCoupon(element: Element, options: CouponOptions): MountedCheckout;
