"""A repository rule that exposes Debian's system libraries to Bazel.

For each entry of `libs` it runs `pkg-config --libs/--cflags` on the listed
modules and writes one `cc_library` carrying the link flags. Include
directories outside /usr/include (e.g. libpq's) are symlinked into the
repository so they can be declared as headers. Plain `-l` flags can be added
for libraries that ship no .pc file.
"""

def _pkg_config(ctx, flag, modules):
    if not modules:
        return []
    res = ctx.execute(["pkg-config", flag] + modules)
    if res.return_code != 0:
        fail("pkg-config %s %s failed (run tools/bootstrap.sh): %s" %
             (flag, " ".join(modules), res.stderr))
    return [w for w in res.stdout.replace("\n", " ").split(" ") if w]

def _system_libs_impl(ctx):
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, spec in ctx.attr.libs.items():
        words = [w for w in spec.split(" ") if w]
        modules = [w for w in words if not w.startswith("-")]
        extra = [w for w in words if w.startswith("-")]
        linkopts = _pkg_config(ctx, "--libs", modules) + extra
        includes = []
        defines = []
        for i, flag in enumerate(_pkg_config(ctx, "--cflags", modules)):
            if flag.startswith("-I") and flag[2:] != "/usr/include":
                link = "%s_inc%d" % (name, i)
                ctx.symlink(flag[2:], link)
                includes.append(link)
            elif flag.startswith("-D"):
                defines.append(flag[2:])
        hdrs = ['glob(["%s/**/*.h"])' % d for d in includes]
        build.append("cc_library(")
        build.append('    name = "%s",' % name)
        build.append("    hdrs = %s," % (" + ".join(hdrs) if hdrs else "[]"))
        build.append("    includes = %s," % repr(includes))
        build.append("    defines = %s," % repr(defines))
        build.append("    linkopts = %s," % repr(linkopts))
        build.append(")")
        build.append("")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD.bazel", "\n".join(build))

system_libs = repository_rule(
    implementation = _system_libs_impl,
    attrs = {
        "libs": attr.string_dict(
            doc = "target name -> space-separated pkg-config modules and extra -l flags",
        ),
    },
    local = True,
    configure = True,
)
