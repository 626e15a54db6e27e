// The Worker's entry module. wasm-bindgen (--target module) exports the Rust `#[event(fetch)]`
// handler as a plain function; workerd wants a default export with a `fetch` method.
import { fetch as rustFetch } from "./build/worker/index.js";

export default {
  fetch(request, env, ctx) {
    return rustFetch(request, env, ctx);
  },
};
