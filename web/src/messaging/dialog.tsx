// A modal dialog: focus moves into it, Escape and its close button close it.

import { useEffect, useRef } from "react";

export function Dialog(props: { title: string; onClose: () => void; children: React.ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.querySelector<HTMLElement>("input, button")?.focus();
  }, []);
  return (
    <div className="dialog-backdrop" onKeyDown={(e) => e.key === "Escape" && props.onClose()}>
      <div role="dialog" aria-modal="true" aria-label={props.title} className="dialog" ref={ref}>
        <header>
          <h2>{props.title}</h2>
          <button aria-label="Close" onClick={props.onClose}>✕</button>
        </header>
        {props.children}
      </div>
    </div>
  );
}
