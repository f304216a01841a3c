/**
 * The interactive 3D view of a result: Spark (a maintained Gaussian-splat renderer for three.js) draws the job's
 * gaussians.ply; OrbitControls orbit and zoom. The camera starts where FaceLift's turntable starts: in front of the
 * face at radius 2.7, field of view 50°, with +Z up (FaceLift's world is Z-up, the face looks towards −Y).
 */
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { SparkRenderer, SplatMesh } from '@sparkjsdev/spark';

const FRONT = new THREE.Vector3(0, -2.7, 0);

export class SplatViewer {
  private readonly renderer: THREE.WebGLRenderer;
  private readonly scene = new THREE.Scene();
  private readonly camera = new THREE.PerspectiveCamera(50, 1, 0.05, 100);
  private readonly controls: OrbitControls;
  private mesh: SplatMesh | null = null;
  private readonly resize: ResizeObserver;
  /** Frames still to draw. */
  private frames = 0;

  constructor(private readonly host: HTMLElement) {
    this.renderer = new THREE.WebGLRenderer({ antialias: false, alpha: false });
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio));
    this.renderer.setClearColor(0xffffff, 1); // FaceLift renders on white
    host.append(this.renderer.domElement);
    // onDirty: Spark finished a sort or load in the background and the picture needs drawing again.
    this.scene.add(new SparkRenderer({ renderer: this.renderer, onDirty: () => this.wake() }));

    this.camera.up.set(0, 0, 1);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.enableDamping = true;
    this.controls.minDistance = 0.5;
    this.controls.maxDistance = 10;
    this.reset();
    this.renderer.domElement.addEventListener('dblclick', () => this.reset());

    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(host);
    this.fit();
    // Draw only while something changes (and for a short while after, so Spark's background depth sort of the
    // latest view reaches the screen): an idle page costs no GPU time.
    this.controls.addEventListener('change', () => this.wake());
    this.renderer.setAnimationLoop(() => {
      this.controls.update();
      if (this.frames <= 0) return;
      this.frames--;
      this.renderer.render(this.scene, this.camera);
    });
  }

  /** Keeps drawing for the next second or so. */
  wake(): void {
    this.frames = 60;
  }

  reset(): void {
    this.camera.position.copy(FRONT);
    this.controls.target.set(0, 0, 0);
    this.camera.lookAt(0, 0, 0);
    this.controls.update();
    this.wake();
  }

  /** Shows the splats at `url`; resolves with their count once loaded. */
  async load(url: string): Promise<number> {
    this.host.dataset.state = 'loading';
    if (this.mesh) {
      this.scene.remove(this.mesh);
      this.mesh.dispose();
      this.mesh = null;
    }
    try {
      const mesh = new SplatMesh({ url });
      this.mesh = mesh;
      this.scene.add(mesh);
      await mesh.initialized;
      const count = mesh.splats?.getNumSplats() ?? mesh.numSplats;
      this.host.dataset.splats = String(count);
      this.host.dataset.state = 'ready';
      this.reset();
      return count;
    } catch (e) {
      this.host.dataset.state = 'error';
      throw e;
    }
  }

  private fit(): void {
    const w = Math.max(1, this.host.clientWidth), h = Math.max(1, this.host.clientHeight);
    this.renderer.setSize(w, h, true);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.wake();
  }
}
