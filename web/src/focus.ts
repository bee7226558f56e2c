// Keeping the keyboard's place when the control it was on goes away: the
// person admitted leaves the waiting list, the Mute button turns disabled,
// the removed participant's row disappears. Without this the focus falls
// to the page's body and a keyboard or screen-reader user starts over.

import { useEffect, useLayoutEffect, useRef, type RefObject } from "react";

interface Place {
  control: HTMLElement;
  /// The list item the control was in, its list, and its place there.
  item: HTMLElement | null;
  list: HTMLElement | null;
  index: number;
}

const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";

function firstFocusable(within: Element | null): HTMLElement | null {
  return within?.querySelector<HTMLElement>(FOCUSABLE) ?? null;
}

/// The first control in `row` after `control` (Mute disabled: Ask to
/// unmute beside it), else the row's first.
function nextFocusable(row: Element, control: HTMLElement): HTMLElement | null {
  const all = [...row.querySelectorAll<HTMLElement>(FOCUSABLE)];
  return all.find((c) => control.compareDocumentPosition(c) & Node.DOCUMENT_POSITION_FOLLOWING) ?? all[0] ?? null;
}

/// After each render, if the focus was lost from inside `container`, puts
/// it on the nearest control still there: the next control of the same row,
/// else the row that took the lost one's place (or the one before it), else
/// the container itself.
export function useFocusRescue(container: RefObject<HTMLElement | null>) {
  const place = useRef<Place | null>(null);
  useEffect(() => {
    // Only the place of the latest focus counts: once it moves elsewhere
    // on the page, there is nothing here to rescue.
    const onFocusIn = (e: FocusEvent) => {
      const control = e.target as HTMLElement;
      if (!container.current?.contains(control)) {
        place.current = null;
        return;
      }
      const item = control.closest("li");
      const list = item?.parentElement ?? null;
      place.current = { control, item, list, index: item && list ? [...list.children].indexOf(item) : -1 };
    };
    document.addEventListener("focusin", onFocusIn);
    return () => document.removeEventListener("focusin", onFocusIn);
  }, [container]);
  useLayoutEffect(() => {
    const root = container.current;
    const lost = place.current;
    if (!root || !lost) return;
    const active = document.activeElement as HTMLElement | null;
    const fell = !active || active === document.body || (active as HTMLButtonElement).disabled === true;
    const gone = !lost.control.isConnected || (lost.control as HTMLButtonElement).disabled === true;
    if (!fell || !gone) return;
    const sameRow = lost.item?.isConnected ? nextFocusable(lost.item, lost.control) : null;
    const rows = lost.list?.isConnected ? [...lost.list.children] : [];
    const nextRow = rows[Math.min(lost.index, rows.length - 1)] ?? null;
    const target = sameRow ?? firstFocusable(nextRow) ?? (root.querySelector<HTMLElement>("[tabindex='-1']") ?? root);
    if (target === root && root.tabIndex < 0) root.tabIndex = -1;
    target.focus();
  });
}
