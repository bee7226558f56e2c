// Background blur on the device: MediaPipe's selfie segmentation (its model
// and WebAssembly are served by our own server under /mediapipe/) separates
// the person from the background, and a canvas composes a sharp person over
// a blurred (or replaced) background. The result is a new camera track.
//
// Segmentation and drawing run at their own paces: every camera frame is
// drawn with the latest mask, so a device that segments slowly sends smooth
// video with a mask that lags, never a frozen picture. Until the first mask
// exists the whole picture is blurred, so the room is not shown by accident.

import { SelfieSegmentation, type Results } from "@mediapipe/selfie_segmentation";

export class BackgroundBlur {
  private segmenter: SelfieSegmentation | null = null;
  private canvas = document.createElement("canvas");
  private mask = document.createElement("canvas");
  /// The background at an eighth of the size: scaled back up, it is the blur
  /// (a full-size blur filter per frame costs too much on a device without a GPU).
  private small = document.createElement("canvas");
  /// What the segmenter is given: the camera at the model's own size
  /// (256×144), so no full-size frame is uploaded to the GPU and read back.
  private input = document.createElement("canvas");
  private hasMask = false;
  private segmenting = false;
  private nextSegment = 0;
  private video = document.createElement("video");
  private running = false;
  private timer = 0;
  private output: MediaStreamTrack | null = null;
  private background: HTMLImageElement | null = null;

  /// A track of `camera` with the background blurred, or replaced by `image` when given.
  async start(camera: MediaStreamTrack, image?: string): Promise<MediaStreamTrack> {
    const { width = 640, height = 480 } = camera.getSettings();
    this.canvas.width = this.mask.width = width;
    this.canvas.height = this.mask.height = height;
    this.small.width = Math.max(1, Math.round(width / 8));
    this.small.height = Math.max(1, Math.round(height / 8));
    this.input.width = 256;
    this.input.height = Math.max(1, Math.round((256 * height) / width));
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.srcObject = new MediaStream([camera]);
    await this.video.play();
    if (image) {
      this.background = new Image();
      this.background.src = image;
    }
    const ctx = this.canvas.getContext("2d")!;
    const maskCtx = this.mask.getContext("2d")!;
    this.segmenter = new SelfieSegmentation({ locateFile: (file) => `/mediapipe/${file}` });
    this.segmenter.setOptions({ modelSelection: 1, selfieMode: false });
    this.segmenter.onResults((results: Results) => {
      maskCtx.clearRect(0, 0, width, height);
      maskCtx.drawImage(results.segmentationMask, 0, 0, width, height);
      this.hasMask = true;
    });
    this.running = true;
    const smallCtx = this.small.getContext("2d")!;
    // 30 compositions a second on a timer: animation frames stop entirely
    // while the page is not painted (a hidden tab); timers are only slowed.
    const loop = () => {
      if (!this.running) return;
      this.segment();
      this.draw(ctx, smallCtx);
      this.timer = window.setTimeout(loop, 1000 / 30);
    };
    loop();
    this.output = this.canvas.captureStream(30).getVideoTracks()[0];
    return this.output;
  }

  /// Starts segmenting the current camera frame, unless one is in work or
  /// the last took long: segmentation runs on the page's main thread, and
  /// may take at most a third of it, so the video stays fluid on a slow
  /// device (and the mask follows at once on a fast one).
  private segment() {
    const now = performance.now();
    if (this.segmenting || !this.segmenter || now < this.nextSegment) return;
    this.segmenting = true;
    this.input.getContext("2d")!.drawImage(this.video, 0, 0, this.input.width, this.input.height);
    this.segmenter
      .send({ image: this.input })
      .catch(() => {
        /* a frame that could not be segmented is skipped; the last mask stays */
      })
      .finally(() => {
        this.segmenting = false;
        this.nextSegment = performance.now() + 2 * (performance.now() - now);
      });
  }

  private draw(ctx: CanvasRenderingContext2D, smallCtx: CanvasRenderingContext2D) {
    const { width, height } = this.canvas;
    ctx.save();
    ctx.clearRect(0, 0, width, height);
    if (this.hasMask) {
      // The person: the mask, then the camera image where the mask is.
      ctx.drawImage(this.mask, 0, 0, width, height);
      ctx.globalCompositeOperation = "source-in";
      ctx.drawImage(this.video, 0, 0, width, height);
      ctx.globalCompositeOperation = "destination-over";
    }
    // The background behind it (everything, until there is a mask).
    if (this.background?.complete && this.hasMask) {
      ctx.drawImage(this.background, 0, 0, width, height);
    } else {
      smallCtx.filter = "blur(2px)";
      smallCtx.drawImage(this.video, 0, 0, this.small.width, this.small.height);
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(this.small, 0, 0, width, height);
    }
    ctx.restore();
  }

  stop() {
    this.running = false;
    window.clearTimeout(this.timer);
    this.output?.stop();
    void this.segmenter?.close();
    this.segmenter = null;
  }
}
