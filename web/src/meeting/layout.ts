// Where tiles go on the stage: as large as the stage allows, whatever its
// shape, as Meet and Zoom lay out their galleries.

import { useCallback, useRef, useState } from "react";

/// Tiles keep the shape of a camera's picture.
export const TILE_ASPECT = 16 / 9;

export interface GalleryFit {
  columns: number;
  /// Each tile's width in CSS pixels (its height follows from the aspect).
  tileWidth: number;
}

/// The number of columns that makes `count` tiles largest inside a
/// `width` × `height` area with `gap` between them. Two people on a wide
/// screen sit side by side, on a phone held upright one above the other.
export function fitGallery(count: number, width: number, height: number, gap: number): GalleryFit {
  if (count <= 0 || width <= 0 || height <= 0) return { columns: 1, tileWidth: 0 };
  let best: GalleryFit = { columns: 1, tileWidth: 0 };
  for (let columns = 1; columns <= count; columns++) {
    const rows = Math.ceil(count / columns);
    const byWidth = (width - gap * (columns - 1)) / columns;
    const byHeight = ((height - gap * (rows - 1)) / rows) * TILE_ASPECT;
    const tileWidth = Math.floor(Math.min(byWidth, byHeight));
    if (tileWidth > best.tileWidth) best = { columns, tileWidth };
  }
  return best;
}

/// The size of an element's content box, followed as it changes (window
/// resized, a panel opened beside it, a phone turned). Returns the ref to
/// put on the element: a callback, since the element may come and go (the
/// stage exists only once the person is in the meeting).
export function useContentSize(): [(node: HTMLElement | null) => void, { width: number; height: number }] {
  const [size, setSize] = useState({ width: 0, height: 0 });
  const observer = useRef<ResizeObserver | null>(null);
  const ref = useCallback((node: HTMLElement | null) => {
    observer.current?.disconnect();
    observer.current = null;
    if (!node) return;
    observer.current = new ResizeObserver(([entry]) => {
      const box = entry.contentRect;
      setSize((old) => (old.width === box.width && old.height === box.height ? old : { width: box.width, height: box.height }));
    });
    observer.current.observe(node);
  }, []);
  return [ref, size];
}
