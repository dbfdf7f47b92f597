// Type-checking only (not part of the plugin): the part of UXP's `uxp` module the panel uses,
// as Adobe's UXP reference describes SecureStorage (getItem resolves with a Uint8Array).
declare module "uxp" {
  export const storage: {
    secureStorage: {
      readonly length: number;
      getItem(key: string): Promise<Uint8Array>;
      setItem(key: string, value: string | ArrayBuffer | ArrayBufferView): Promise<void>;
      removeItem(key: string): Promise<void>;
    };
  };
}
