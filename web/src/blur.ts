// Background blur on the device: MediaPipe's selfie segmentation (its model
// and WebAssembly are served by our own server under /mediapipe/) separates
// the person from the background, and a canvas composes a sharp person over
// a blurred (or replaced) background. The result is a new camera track.

import { SelfieSegmentation, type Results } from "@mediapipe/selfie_segmentation";

export class BackgroundBlur {
  private segmenter: SelfieSegmentation | null = null;
  private canvas = document.createElement("canvas");
  private video = document.createElement("video");
  private running = false;
  private output: MediaStreamTrack | null = null;
  private background: HTMLImageElement | null = null;

  /// A track of `camera` with the background blurred, or replaced by `image` when given.
  async start(camera: MediaStreamTrack, image?: string): Promise<MediaStreamTrack> {
    const { width = 640, height = 480 } = camera.getSettings();
    this.canvas.width = width;
    this.canvas.height = height;
    this.video.muted = true;
    this.video.playsInline = true;
    this.video.srcObject = new MediaStream([camera]);
    await this.video.play();
    if (image) {
      this.background = new Image();
      this.background.src = image;
    }
    const ctx = this.canvas.getContext("2d")!;
    this.segmenter = new SelfieSegmentation({ locateFile: (file) => `/mediapipe/${file}` });
    this.segmenter.setOptions({ modelSelection: 1, selfieMode: false });
    this.segmenter.onResults((results: Results) => this.draw(ctx, results));
    this.running = true;
    const loop = async () => {
      if (!this.running || !this.segmenter) return;
      try {
        await this.segmenter.send({ image: this.video });
      } catch {
        /* a frame that could not be processed is skipped */
      }
      if (this.running) requestAnimationFrame(() => void loop());
    };
    void loop();
    this.output = this.canvas.captureStream(30).getVideoTracks()[0];
    return this.output;
  }

  private draw(ctx: CanvasRenderingContext2D, results: Results) {
    const { width, height } = this.canvas;
    ctx.save();
    ctx.clearRect(0, 0, width, height);
    // The person: the mask, then the camera image where the mask is.
    ctx.drawImage(results.segmentationMask, 0, 0, width, height);
    ctx.globalCompositeOperation = "source-in";
    ctx.drawImage(results.image, 0, 0, width, height);
    // The background behind it.
    ctx.globalCompositeOperation = "destination-over";
    if (this.background?.complete) {
      ctx.drawImage(this.background, 0, 0, width, height);
    } else {
      ctx.filter = "blur(14px)";
      ctx.drawImage(results.image, 0, 0, width, height);
    }
    ctx.restore();
  }

  stop() {
    this.running = false;
    this.output?.stop();
    void this.segmenter?.close();
    this.segmenter = null;
  }
}
