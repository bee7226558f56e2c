// A video's poster: one frame, made on the sender's device before the
// video is sealed, so that the others see what it shows before they fetch
// (and decrypt) all of it. Made in the page, which has the file the person
// chose anyway: the E2EE worker has no video decoder to draw a frame with.

/// Longest side of a poster, in pixels (as a picture's preview).
const POSTER_SIDE = 320;
/// How long a browser may take to show the frame before the video goes
/// without a poster.
const PATIENCE_MS = 5000;

export interface Poster {
  preview: Blob;
  /// The video's own width and height.
  dimensions: [number, number];
}

/// A JPEG of the frame half a second in (or a third of the way into a
/// shorter video), or `null` when the browser cannot play the file.
export async function videoPoster(file: File): Promise<Poster | null> {
  const url = URL.createObjectURL(file);
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  video.src = url;
  const happened = (event: string) =>
    new Promise<boolean>((resolve) => {
      const timer = window.setTimeout(() => resolve(false), PATIENCE_MS);
      video.addEventListener(event, () => (window.clearTimeout(timer), resolve(true)), { once: true });
      video.addEventListener("error", () => (window.clearTimeout(timer), resolve(false)), { once: true });
    });
  try {
    if (!(await happened("loadeddata")) || !video.videoWidth || !video.videoHeight) return null;
    const duration = Number.isFinite(video.duration) ? video.duration : 0;
    const seeked = happened("seeked");
    video.currentTime = Math.min(0.5, duration / 3);
    if (!(await seeked)) return null;
    const scale = Math.min(1, POSTER_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(video.videoWidth * scale));
    canvas.height = Math.max(1, Math.round(video.videoHeight * scale));
    canvas.getContext("2d")?.drawImage(video, 0, 0, canvas.width, canvas.height);
    const preview = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
    return preview ? { preview, dimensions: [video.videoWidth, video.videoHeight] } : null;
  } finally {
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(url);
  }
}
