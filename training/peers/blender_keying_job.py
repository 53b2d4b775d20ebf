"""Runs inside Blender, not in gsrender: key every plate of a job with the compositor's Keying node.

    blender -b --factory-startup --python-exit-code 3 --python blender_keying_job.py -- JOB.json

JOB.json: {"plates": [{"plate": in.exr, "key": [r, g, b], "out_dir": dir, "stem": name}, ...]}.
Each plate (scene-linear Rec.709 float EXR, Blender's own working space) goes through
Image -> Keying (default settings, Key Color = the job's colour) and the Matte output is
written as a float EXR (R = G = B = matte) ``out_dir/stem0001.exr``. One Blender process keys the
whole job, because its start-up costs seconds. The node tree has no Render Layers node, so
rendering runs the compositor alone (no camera, no 3D scene).
"""

import json
import sys

import bpy

# the Keying node's settings, reported (as this Blender's defaults) in the evaluation's header
SETTINGS = (
    "screen_balance",
    "despill_factor",
    "despill_balance",
    "clip_black",
    "clip_white",
    "blur_pre",
    "blur_post",
    "dilate_distance",
    "edge_kernel_radius",
    "edge_kernel_tolerance",
    "feather_distance",
)


def build_tree(scene):
    """Image -> Keying -> (Composite, File Output); returns the nodes the loop changes."""
    scene.use_nodes = True
    tree = scene.node_tree
    for node in list(tree.nodes):
        tree.nodes.remove(node)
    image = tree.nodes.new("CompositorNodeImage")
    keying = tree.nodes.new("CompositorNodeKeying")  # every setting left at its default
    composite = tree.nodes.new("CompositorNodeComposite")
    out = tree.nodes.new("CompositorNodeOutputFile")
    out.format.file_format = "OPEN_EXR"
    out.format.color_depth = "32"
    out.format.color_mode = "RGB"  # EXR output offers no one-channel mode here; R = G = B = matte
    out.format.exr_codec = "ZIP"
    tree.links.new(image.outputs["Image"], keying.inputs["Image"])
    tree.links.new(keying.outputs["Matte"], composite.inputs["Image"])
    tree.links.new(keying.outputs["Matte"], out.inputs[0])
    return image, keying, out


def main() -> None:
    with open(sys.argv[sys.argv.index("--") + 1]) as f:
        job = json.load(f)
    scene = bpy.context.scene
    scene.render.resolution_percentage = 100
    scene.render.use_compositing = True
    scene.render.use_sequencer = False
    scene.view_settings.view_transform = "Standard"  # EXR output is linear whatever this is
    scene.frame_current = 1
    image, keying, out = build_tree(scene)
    settings = {name: getattr(keying, name) for name in SETTINGS}
    print("gsrender-keying-settings " + json.dumps(settings), flush=True)
    for item in job["plates"]:
        img = bpy.data.images.load(item["plate"], check_existing=False)
        img.colorspace_settings.name = "Linear"
        image.image = img
        keying.inputs["Key Color"].default_value = (*item["key"], 1.0)
        scene.render.resolution_x, scene.render.resolution_y = img.size[0], img.size[1]
        out.base_path = item["out_dir"]
        out.file_slots[0].path = item["stem"]
        bpy.ops.render.render(write_still=False)
        image.image = None
        bpy.data.images.remove(img)
    print("gsrender-keying-done", flush=True)


main()
