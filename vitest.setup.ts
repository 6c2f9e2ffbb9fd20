// Quiet the AWS SDK's Node-version notice in test workers (the pinned SDK works on Node 20).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
