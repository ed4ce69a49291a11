"""Procedural heightfield terrain (rough, slopes, stairs) on a grid of tiles, and a curriculum over its rows.

Rows are difficulty levels (0 = easiest), columns are terrain types. Each environment lives on one tile; when an
episode ends, robots that walked far move one row harder and robots that fell short move one row easier, the
scheme of Rudin et al. 2022 ("Learning to walk in minutes using massively parallel deep RL").
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

TERRAIN_TYPES = ("rough", "slope_up", "slope_down", "stairs_up", "stairs_down")


@dataclass(frozen=True)
class TerrainConfig:
    """Heightfield terrain. Difficulty d in [0, 1] grows linearly with the row."""

    types: tuple[str, ...] = TERRAIN_TYPES
    num_levels: int = 6
    tile_size_m: float = 4.0
    resolution_m: float = 0.1
    rough_amplitude_m: tuple[float, float] = (0.01, 0.06)  # uniform noise amplitude at d = 0 and d = 1
    slope: tuple[float, float] = (0.0, 0.35)  # rise over run
    step_height_m: tuple[float, float] = (0.02, 0.12)
    step_width_m: float = 0.3
    curriculum: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [t for t in self.types if t not in TERRAIN_TYPES]
        if unknown:
            raise ValueError(f"TerrainConfig.types: unknown {unknown}; valid types: {list(TERRAIN_TYPES)}")
        if self.num_levels < 1 or self.tile_size_m <= 0 or self.resolution_m <= 0:
            raise ValueError("TerrainConfig: num_levels >= 1, tile_size_m > 0 and resolution_m > 0 are required")


class Terrain:
    """The heightfield (metres, row-major over y then x) and tile bookkeeping."""

    def __init__(self, cfg: TerrainConfig):
        self.cfg = cfg
        self.px = int(round(cfg.tile_size_m / cfg.resolution_m))  # samples per tile side
        rows, cols = cfg.num_levels, len(cfg.types)
        self.heights = np.zeros((rows * self.px, cols * self.px))  # (y samples, x samples)
        rng = np.random.default_rng(cfg.seed)
        for level in range(rows):
            d = level / max(rows - 1, 1)
            for c, kind in enumerate(cfg.types):
                self.heights[level * self.px : (level + 1) * self.px, c * self.px : (c + 1) * self.px] = self._tile(
                    kind, d, rng
                )
        self.size_x = cols * cfg.tile_size_m
        self.size_y = rows * cfg.tile_size_m
        self.origin = np.array([-self.size_x / 2, -self.size_y / 2])  # world xy of sample (0, 0)

    def _tile(self, kind: str, d: float, rng: np.random.Generator) -> np.ndarray:
        cfg, n = self.cfg, self.px
        lerp = lambda r: r[0] + d * (r[1] - r[0])  # noqa: E731
        x = (np.arange(n) + 0.5) * cfg.resolution_m - cfg.tile_size_m / 2  # tile-centred coordinate, m
        r = np.maximum(np.abs(x)[None, :], np.abs(x)[:, None])  # square distance from the tile centre
        flat = cfg.tile_size_m * 0.15  # flat spawn pad half-width
        if kind == "rough":
            a = lerp(cfg.rough_amplitude_m)
            return rng.uniform(0, a, size=(n, n))
        if kind in ("slope_up", "slope_down"):
            h = np.clip(r - flat, 0, None) * lerp(cfg.slope)
            return h if kind == "slope_down" else h.max() - h  # down: the robot walks down from a raised pad
        step = lerp(cfg.step_height_m)
        h = np.floor(np.clip(r - flat, 0, None) / cfg.step_width_m) * step
        return h if kind == "stairs_down" else h.max() - h

    def add_to(self, spec: mujoco.MjSpec) -> None:
        """Add the heightfield and its geom to a robot's MjSpec (built without its flat floor)."""
        h = self.heights
        zmax = max(float(h.max()), 1e-3)
        hf = spec.add_hfield(
            name="terrain", nrow=h.shape[0], ncol=h.shape[1], size=[self.size_x / 2, self.size_y / 2, zmax, 0.1]
        )
        hf.userdata = (h / zmax).ravel().tolist()
        spec.worldbody.add_geom(
            name="terrain",
            type=mujoco.mjtGeom.mjGEOM_HFIELD,
            hfieldname="terrain",
            contype=1,
            conaffinity=0,
            condim=3,
            friction=[1.0, 0.005, 0.0001],
        )

    def set_hfield_data(self, model: mujoco.MjModel) -> None:
        hid = model.hfield("terrain").id
        zmax = model.hfield_size[hid, 2]
        model.hfield_data[:] = (self.heights / zmax).ravel()

    def tile_center(self, level: np.ndarray, col: np.ndarray) -> np.ndarray:
        """World xy of the centre of tiles (level, col). (N,), (N,) -> (N, 2)."""
        ts = self.cfg.tile_size_m
        return np.stack([self.origin[0] + (col + 0.5) * ts, self.origin[1] + (level + 0.5) * ts], axis=-1)

    def height_at(self, xy: np.ndarray) -> np.ndarray:
        """Terrain height (m) under world points, bilinear. (..., 2) -> (...)."""
        res = self.cfg.resolution_m
        # MuJoCo places hfield samples at the cell grid spanning [-size, size]; sample j sits at origin + j * step
        ny, nx = self.heights.shape
        fx = (xy[..., 0] - self.origin[0]) / (self.size_x / (nx - 1)) if nx > 1 else 0 * xy[..., 0]
        fy = (xy[..., 1] - self.origin[1]) / (self.size_y / (ny - 1)) if ny > 1 else 0 * xy[..., 1]
        del res
        fx = np.clip(fx, 0, nx - 1.000001)
        fy = np.clip(fy, 0, ny - 1.000001)
        x0, y0 = fx.astype(int), fy.astype(int)
        tx, ty = fx - x0, fy - y0
        h = self.heights
        return (
            (1 - tx) * (1 - ty) * h[y0, x0]
            + tx * (1 - ty) * h[y0, x0 + 1]
            + (1 - tx) * ty * h[y0 + 1, x0]
            + tx * ty * h[y0 + 1, x0 + 1]
        )


def update_levels(
    level: np.ndarray, distance_m: np.ndarray, commanded_m: np.ndarray, tile_size_m: float, num_levels: int
) -> np.ndarray:
    """Curriculum step for finished episodes: up a row after walking over half a tile, down a row after covering
    less than half the commanded distance. (N,) arrays -> new levels (N,)."""
    up = distance_m > tile_size_m / 2
    down = (distance_m < 0.5 * commanded_m) & ~up
    return np.clip(level + up.astype(int) - down.astype(int), 0, num_levels - 1)
