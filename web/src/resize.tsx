// Areas a person resizes, as in Slack and Teams: a handle on the area's
// edge, dragged or moved with the arrow keys, the width kept in this
// browser (a number, nothing else, in localStorage).

import { useState } from "react";

/// How far one arrow key press moves a handle, in CSS pixels.
const KEY_STEP = 16;

/// A width chosen by the person, within `min` and `max`, remembered under
/// `key` across reloads.
export function useStoredWidth(key: string, initial: number, min: number, max: number): [number, (width: number) => void] {
  const storageKey = `conclave.width.${key}`;
  const clamp = (w: number) => Math.round(Math.min(max, Math.max(min, w)));
  const [width, setWidth] = useState(() => {
    const stored = Number(localStorage.getItem(storageKey));
    return stored > 0 ? clamp(stored) : initial;
  });
  const choose = (w: number) => {
    const chosen = clamp(w);
    setWidth(chosen);
    localStorage.setItem(storageKey, String(chosen));
  };
  return [width, choose];
}

/// The handle on an area's `edge` (the side that moves): drag it, or focus
/// it and press the arrow keys (Home and End for the smallest and largest).
export function ResizeHandle(props: {
  label: string;
  width: number;
  min: number;
  max: number;
  edge: "left" | "right";
  onResize: (width: number) => void;
}) {
  // Moving the pointer (or the arrow) away from the area makes it larger.
  const outward = props.edge === "right" ? 1 : -1;
  const onPointerDown = (e: React.PointerEvent<HTMLDivElement>) => {
    e.preventDefault();
    const handle = e.currentTarget;
    handle.setPointerCapture(e.pointerId);
    const startX = e.clientX;
    const startWidth = props.width;
    const move = (m: PointerEvent) => props.onResize(startWidth + outward * (m.clientX - startX));
    const stop = () => {
      handle.removeEventListener("pointermove", move);
      handle.removeEventListener("pointerup", stop);
      handle.removeEventListener("pointercancel", stop);
    };
    handle.addEventListener("pointermove", move);
    handle.addEventListener("pointerup", stop);
    handle.addEventListener("pointercancel", stop);
  };
  const onKeyDown = (e: React.KeyboardEvent) => {
    const step = { ArrowRight: KEY_STEP, ArrowLeft: -KEY_STEP }[e.key];
    if (step !== undefined) props.onResize(props.width + outward * step);
    else if (e.key === "Home") props.onResize(props.min);
    else if (e.key === "End") props.onResize(props.max);
    else return;
    e.preventDefault();
  };
  return (
    <div
      className={`resize-handle ${props.edge}`}
      role="separator"
      aria-orientation="vertical"
      aria-label={props.label}
      aria-valuenow={props.width}
      aria-valuemin={props.min}
      aria-valuemax={props.max}
      tabIndex={0}
      title={`${props.label} (drag, or the arrow keys)`}
      onPointerDown={onPointerDown}
      onKeyDown={onKeyDown}
    />
  );
}
