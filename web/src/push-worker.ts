// The service worker that lets a closed tab know messages arrived. The
// server pushes to a device only while it is not connected, and a push
// carries nothing at all, not even encrypted: the push service (Google's,
// Mozilla's, Apple's) learns only that something happened. So the worker
// says only that: opening Conclave syncs and decrypts the messages in the
// app's own E2EE worker, which alone holds the keys.
//
// Built by Vite as its own entry, served at /push-worker.js so that its
// scope is the whole app.

// The few service-worker types used, declared here: the app's TypeScript
// library is the page's (DOM), not a worker's.
interface ExtendableEvent extends Event {
  waitUntil(work: Promise<unknown>): void;
}
interface NotificationClickEvent extends ExtendableEvent {
  notification: Notification;
}
interface WindowClientLike {
  url: string;
  focus(): Promise<unknown>;
}
interface ServiceWorkerScope {
  registration: ServiceWorkerRegistration;
  clients: {
    matchAll(options: { type: "window"; includeUncontrolled: boolean }): Promise<WindowClientLike[]>;
    openWindow(url: string): Promise<unknown>;
    claim(): Promise<void>;
  };
  skipWaiting(): Promise<void>;
  addEventListener(type: "install" | "activate" | "push", listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: "notificationclick", listener: (event: NotificationClickEvent) => void): void;
}

const worker = self as unknown as ServiceWorkerScope;

/// One notification however many pushes arrive: each replaces the last.
const TAG = "conclave-new-messages";

worker.addEventListener("install", (event) => event.waitUntil(worker.skipWaiting()));
worker.addEventListener("activate", (event) => event.waitUntil(worker.clients.claim()));

worker.addEventListener("push", (event) =>
  event.waitUntil(
    worker.registration.showNotification("Conclave", {
      body: "You have new messages. Open Conclave to read them.",
      tag: TAG,
      icon: "/favicon.svg",
    }),
  ),
);

// A click opens the messages: an open tab of the app if there is one.
worker.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(
    worker.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => new URL(w.url).pathname.startsWith("/messages")) ?? windows[0];
      return open ? open.focus() : worker.clients.openWindow("/messages");
    }),
  );
});

export {};
