# The OLM bundle image (make bundle); a non-runnable image of manifests.
FROM scratch
LABEL com.redhat.openshift.versions=v4.20
LABEL operators.operatorframework.io.bundle.channel.default.v1=candidate
LABEL operators.operatorframework.io.bundle.channels.v1=candidate
LABEL operators.operatorframework.io.bundle.manifests.v1=manifests/
LABEL operators.operatorframework.io.bundle.mediatype.v1=registry+v1
LABEL operators.operatorframework.io.bundle.metadata.v1=metadata/
LABEL operators.operatorframework.io.bundle.package.v1=seccomp-sentinel
LABEL com.redhat.delivery.operator.bundle=true
COPY bundle/manifests /manifests/
COPY bundle/metadata /metadata/
COPY LICENSE /licenses/LICENSE
