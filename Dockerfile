# hugefault as a container image: SDK stage publishes the CLI, runtime stage runs it (fonts for the plots).
#   tools/docker/build.sh                     # docker or podman build -t hugefault:<git describe> .
#   docker run --rm hugefault fleet --servers 100000 --json
# docs/k8s-indexed-job.yaml runs it as a Kubernetes Indexed Job.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/HugeFault.Cli -c Release -o /out

FROM mcr.microsoft.com/dotnet/runtime:10.0
# SkiaSharp (ScottPlot's renderer) needs fontconfig and a font to draw the --plot / --html charts.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fontconfig fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out /opt/hugefault
RUN ln -s /opt/hugefault/HugeFault.Cli /usr/local/bin/hugefault
ENV DOTNET_gcServer=0 DOTNET_CLI_TELEMETRY_OPTOUT=1
WORKDIR /work
ENTRYPOINT ["hugefault"]
CMD ["--help"]
