/**
 * The camera sets FaceLift uses (spec pipeline.md §5 and §7, data-formats.md §3). All cameras sit on a sphere of
 * radius 2.7 around the origin, look at it, FOV 50°, Z-up world, OpenCV axes (orbitCamera).
 */
import { orbitCamera, type Camera } from './camera.ts';

export const FACELIFT_RADIUS = 2.7;
export const FACELIFT_FOV_DEG = 50;

/** The 6 generated views, in the order GS-LRM receives them (opencv_cameras.json frames [2, 1, 0, 5, 4, 3]). */
export const FACELIFT_VIEWS = [
  { name: 'front', azimuthDeg: 270 },
  { name: 'front_right', azimuthDeg: 225 },
  { name: 'right', azimuthDeg: 180 },
  { name: 'back', azimuthDeg: 90 },
  { name: 'left', azimuthDeg: 0 },
  { name: 'front_left', azimuthDeg: 315 },
] as const;

/** The 6 fixed FaceLift views at elevation 0 (front, front_right, right, back, left, front_left), square `resolution`. */
export function faceliftViews(resolution = 512): Camera[] {
  return FACELIFT_VIEWS.map((v) =>
    orbitCamera({ azimuthDeg: v.azimuthDeg, elevationDeg: 0, radius: FACELIFT_RADIUS, fovDeg: FACELIFT_FOV_DEG, width: resolution }));
}

/**
 * The turntable path: `frames` cameras at azimuths linspace(270°, 630°, frames, endpoint=False), elevation 0
 * (hard-coded in FaceLift's render_turntable), so frame 0 is the front view and the camera moves towards the
 * subject's left (+X) first.
 */
export function turntableCameras(frames = 150, resolution = 512, elevationDeg = 0): Camera[] {
  if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`turntable frame count must be a positive integer, got ${frames}`);
  const cams: Camera[] = [];
  for (let i = 0; i < frames; i++) {
    cams.push(orbitCamera({
      azimuthDeg: 270 + (360 * i) / frames, elevationDeg, radius: FACELIFT_RADIUS, fovDeg: FACELIFT_FOV_DEG, width: resolution,
    }));
  }
  return cams;
}

/**
 * The 32-view training rig of data_sample/gslrm (data-formats.md §3): radius 2.7, elevation +20°, azimuth i·11.25°
 * (cam_000 on +X, cam_024 on −Y = the face's front), FOV 50°. Other elevations give the same ring higher or lower;
 * the ring at elevation 0 contains the 6 FaceLift views (their azimuths are multiples of 11.25°).
 */
export function trainingRig(resolution = 512, views = 32, elevationDeg = 20): Camera[] {
  const cams: Camera[] = [];
  for (let i = 0; i < views; i++) {
    cams.push(orbitCamera({
      azimuthDeg: (360 * i) / views, elevationDeg, radius: FACELIFT_RADIUS, fovDeg: FACELIFT_FOV_DEG, width: resolution,
    }));
  }
  return cams;
}
